"""Reading a worker's policies without disturbing RLlib's LRU policy cache."""

from __future__ import annotations

import sys
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from ray.rllib.policy.policy import Policy


def loaded_policy(worker: Any, policy_id: str) -> Policy | None:
    """The policy object if it is in the worker's policy cache now, without loading or
    reordering the LRU cache (reading ``policy_map[pid]`` may evict another policy)."""
    return loaded_policy_in_map(getattr(worker, "policy_map", None), policy_id)


def loaded_policy_in_map(policy_map: Any, policy_id: str | None) -> Policy | None:
    if policy_map is None or policy_id is None:
        return None
    cache = getattr(policy_map, "cache", None)
    if isinstance(cache, dict):
        return cache.get(policy_id)
    return policy_map.get(policy_id) if policy_id in policy_map else None


def stashed_state_ref(worker: Any, policy_id: str) -> Any:
    """The object-store ref of a policy's stashed state (the LRU policy map keeps evicted
    policies there), or None."""
    refs = getattr(getattr(worker, "policy_map", None), "_policy_state_refs", None)
    return refs.get(policy_id) if isinstance(refs, dict) else None


def policy_to_stash(policy_map: Any) -> str | None:
    """The id ``PolicyMap._stash_least_used_policy`` is about to evict (its LRU end)."""
    order = getattr(policy_map, "_deque", None)
    return order[0] if order else None


def policy_ids(worker: Any) -> list[str]:
    policy_map = getattr(worker, "policy_map", None)
    return list(policy_map.keys()) if policy_map is not None else []


def weights_read_from_torch_model(policy: Policy) -> bool:
    """True when ``policy.get_weights()`` is exactly ``policy.model``'s state dict, so tensor
    version counters tell whether the weights changed (no need to read them)."""
    torch_policy_classes: list[Any] = []
    for module_name, class_name in (
        ("ray.rllib.policy.torch_policy_v2", "TorchPolicyV2"),
        ("ray.rllib.policy.torch_policy", "TorchPolicy"),
    ):
        cls = getattr(sys.modules.get(module_name), class_name, None)
        if cls is not None:
            torch_policy_classes.append(cls)
    get_weights = getattr(type(policy), "get_weights", None)
    return any(get_weights is cls.get_weights for cls in torch_policy_classes) and hasattr(
        getattr(policy, "model", None), "parameters"
    )
