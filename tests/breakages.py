"""The ways ``.ci/breakages.py`` breaks the fix on purpose (applied by ``conftest.py`` in the
test process when ``RLLIB_ADDPOLICY_FIX_TEST_BREAKAGE`` names one). Each must make at least one
test of every file that claims to cover it fail."""

from __future__ import annotations

from typing import Any

from rllib_addpolicy_fix.patching import worker_set as _worker_set
from rllib_addpolicy_fix.syncing import broadcast as _broadcast
from rllib_addpolicy_fix.syncing import held_adds as _held_adds
from rllib_addpolicy_fix.syncing import restarts as _restarts


def _never_sent(group: Any) -> list[str]:
    return []


def _nothing_pushed(group: Any) -> list[str]:
    return []


def _none_restarted(group: Any) -> list[int]:
    return []


def _narrowed_to_nothing(group: Any, arguments: Any) -> list[str]:
    return []


def _not_the_drivers_state(source: Any, policy_id: str) -> tuple[Any, dict[str, Any]]:
    import numpy as np

    stamp, state = _real_state(source, policy_id)
    weights = {k: np.asarray(v) + np.float32(1.0) for k, v in state["weights"].items()}
    return stamp, dict(state, weights=weights)


_real_state = _held_adds.current_policy_state


def apply(name: str) -> None:
    if name == "held-adds-never-sent":
        _held_adds.send_held_adds = _never_sent
    elif name == "pre-use-broadcast-skipped":
        _broadcast.push_before_use = _nothing_pushed
    elif name == "restart-check-off":
        _restarts.take_out_unnoticed = _none_restarted
        _restarts.unnoticed = _none_restarted
    elif name == "evaluation-sync-narrowed-to-nothing":
        _worker_set._evaluation_sync = _narrowed_to_nothing
    elif name == "remote-adds-without-the-drivers-state":
        _held_adds.current_policy_state = _not_the_drivers_state
    else:
        raise ValueError(f"unknown breakage {name!r}")
