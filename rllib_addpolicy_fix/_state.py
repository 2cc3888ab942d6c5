"""A driver-side policy's state as its remote copies need it, and how big it is."""

from __future__ import annotations

from collections.abc import Hashable
from typing import Any

from . import _compat
from ._remote import leaves
from ._stamps import stash_stamp, weights_stamp


def state_nbytes(tree: Any) -> int:
    """Bytes of the arrays in a (nested) weights or state structure."""
    return sum(int(getattr(leaf, "nbytes", 0) or 0) for _, leaf in leaves(tree))


#: Parts of a driver-side policy's state that its remote copies, built from the same class,
#: spaces and config, already have. Leaving them out spares every worker deserialising the
#: driver's config and connectors, and keeps each worker set's own config (the evaluation
#: workers').
REBUILT_BY_EVERY_WORKER = ("policy_spec", "connector_configs")


def current_policy_state(source: Any, policy_id: str) -> tuple[Hashable, dict[str, Any]]:
    """(stamp, state) of the driver-side worker ``source``'s policy now, read from the LRU
    cache's stash if it was evicted (never loaded for this: that would evict another)."""
    import ray

    policy = _compat.loaded_policy(source, policy_id)
    if policy is not None:
        stamp: Hashable = weights_stamp(policy)
        state = policy.get_state()
    else:
        stash_ref = _compat.stashed_state_ref(source, policy_id)
        stamp, state = stash_stamp(stash_ref), ray.get(stash_ref)
    return stamp, {key: value for key, value in state.items() if key not in REBUILT_BY_EVERY_WORKER}
