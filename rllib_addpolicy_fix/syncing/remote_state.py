"""What a remote worker process holds of the fix: the version of each policy it was delivered,
and a cheap stamp to tell when its weights change.

Kept on the ``RolloutWorker`` instance (:data:`HELD`), so a process Ray restarted has none: it
holds no version until a delivery or a catch-up publishes one. A version is published only
after the weights were applied, with their digest, and the policy's stamp then: torch's
per-tensor change counters (every in-place write moves them, ``set_weights`` included) and the
tensors' identities, or the LRU cache's stash entry for a stashed policy.

Pickled by value like ``remote`` (standard library and ``ray`` only; nothing else of the
package): the functions that run on the workers import from here by name.
"""

from __future__ import annotations

import sys
import weakref
from typing import Any

#: ``{policy_id: [version, digest, stamp]}`` of this worker process.
HELD = "_rllib_addpolicy_fix_held"
#: Each torch policy's tensors, cached per policy object.
TENSORS = "_rllib_addpolicy_fix_tensors"


def held(worker: Any) -> dict[str, list[Any]]:
    """``{policy_id: [version, digest, stamp]}`` of this worker process."""
    versions: dict[str, list[Any]] | None = vars(worker).get(HELD)
    if versions is None:
        versions = vars(worker)[HELD] = {}
    return versions


def held_versions(worker: Any) -> dict[str, int]:
    return {pid: int(record[0]) for pid, record in (vars(worker).get(HELD) or {}).items()}


def publish(worker: Any, pid: str, version: int, digest: str) -> bool:
    """The worker holds ``version`` of ``pid`` now (its weights were just applied); False if
    that could not be recorded (the weights stay applied; the next check digests them)."""
    try:
        held(worker)[pid] = [version, digest, stamp(worker, worker.policy_map, pid)]
        return True
    except Exception:  # noqa: BLE001 - must not undo a delivery, nor raise in a RolloutWorker
        held(worker).pop(pid, None)
        return False


def stamp(worker: Any, policy_map: Any, pid: str) -> Any:
    """A value that changes whenever the policy's weights may have: for a torch policy, its
    tensors' identities and change counters; for a policy in the LRU cache's stash, the stash
    entry; None where nothing cheaper than a digest can tell (then every check digests)."""
    refs = stashed_refs(policy_map, pid)
    if refs is not None:
        return ("stash", refs[pid].hex())
    policy = policy_map[pid]
    if not weights_are_the_torch_model(policy):
        return None
    model = policy.model
    lists = _tensor_lists(worker)
    cached = lists.get(policy)
    if cached is None or cached[0]() is not model:
        tensors = tuple(model.parameters()) + tuple(model.buffers())
        cached = lists[policy] = (weakref.ref(model), tensors)
    return (id(policy), tuple((id(t), t._version) for t in cached[1]))


def stashed_refs(policy_map: Any, policy_id: str) -> dict[str, Any] | None:
    """The LRU policy map's stash (``{policy_id: state ref}``) when ``policy_id`` is in it, not
    in the cache; else None."""
    cache = getattr(policy_map, "cache", None)
    refs = getattr(policy_map, "_policy_state_refs", None)
    if isinstance(cache, dict) and isinstance(refs, dict):
        if policy_id not in cache and policy_id in refs:
            return refs
    return None


def _tensor_lists(worker: Any) -> weakref.WeakKeyDictionary[Any, Any]:
    """Walking a model's modules on every call would cost more than the check: the tensors are
    cached per policy object, on the worker instance (this module's globals are new with every
    call that carries it)."""
    lists: weakref.WeakKeyDictionary[Any, Any] | None = vars(worker).get(TENSORS)
    if lists is None:
        lists = vars(worker)[TENSORS] = weakref.WeakKeyDictionary()
    return lists


def weights_are_the_torch_model(policy: Any) -> bool:
    """Kept in step with ``_compat.policies.weights_read_from_torch_model`` (this module cannot
    import the package)."""
    for module_name, class_name in (
        ("ray.rllib.policy.torch_policy_v2", "TorchPolicyV2"),
        ("ray.rllib.policy.torch_policy", "TorchPolicy"),
    ):
        cls = getattr(sys.modules.get(module_name), class_name, None)
        if cls is not None and getattr(type(policy), "get_weights", None) is cls.get_weights:
            return hasattr(getattr(policy, "model", None), "parameters")
    return False
