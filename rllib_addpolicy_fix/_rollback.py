"""Undo a failed ``add_policy`` so the driver and its workers agree on which policies exist.

RLlib adds to the driver's worker first and builds the policy before applying ``policy_state``,
so a bad state leaves the policy on the driver only; a failure on the evaluation set leaves it on
the training set only. The shim removes what the failed call added (only ids that were absent
before the call), then lets the original error propagate.
"""

from __future__ import annotations

import functools
import logging
from typing import Any

from . import _compat, _remote, _tracking

logger = logging.getLogger(__name__)


def absent_from(groups: dict[str, Any], policy_id: str) -> dict[str, Any]:
    """The sets (by role) whose driver-side worker lacks ``policy_id`` now."""
    return {
        role: group
        for role, group in groups.items()
        if policy_id not in _compat.policy_ids(_compat.local_worker(group))
    }


def undo_add(group: Any, policy_id: str) -> None:
    """Remove ``policy_id`` from the set's driver-side worker and every remote worker holding
    it. Never raises: it runs while another error is on its way to the caller."""
    try:
        own = _compat.local_worker(group)
        if own is not None and policy_id in _compat.policy_ids(own):
            own.remove_policy(policy_id=policy_id)
        if _compat.num_remote_workers(group):
            remove = functools.partial(_remote.remove_policy, policy_id=policy_id)
            _compat.foreach_remote(group, remove)
        _tracking.record_for(group).forget(policy_id)
    except Exception:  # noqa: BLE001
        logger.exception("rllib_addpolicy_fix: could not undo the failed add of %r", policy_id)
