"""The only code of ours that runs inside remote RolloutWorkers.

This module is registered with Ray's cloudpickle to be pickled *by value*, so remote nodes need no
copy of the package: keep it to the standard library and ``ray``, and import nothing from the rest
of the package. Every function here swallows its errors and reports them in its return value: an
exception escaping a function run through ``foreach_worker`` kills the RolloutWorker.
"""

from __future__ import annotations

import hashlib
import logging
from collections.abc import Iterator
from typing import Any

logger = logging.getLogger("rllib_addpolicy_fix.remote")


def resolve_state(state_ref: Any) -> Any:
    """Unpickling hook for a policy state sent as an object-store ref: the remote ``add_policy``
    receives the state itself. On failure it receives None, which is RLlib's own default."""
    try:
        import ray

        return ray.get(state_ref)
    except Exception:  # noqa: BLE001 - must not raise inside a RolloutWorker
        logger.exception("rllib_addpolicy_fix: could not fetch the added policy's state")
        return None


def set_policy_weights(worker: Any, weights_ref: Any) -> dict[str, Any]:
    """Apply ``{policy_id: weights}`` (or an object-store ref to it) for the policies this
    worker has.

    Returns ``{"applied": [...], "missing": [...], "error": str | None}``.
    """
    applied: list[str] = []
    missing: list[str] = []
    try:
        import ray

        weights = ray.get(weights_ref) if isinstance(weights_ref, ray.ObjectRef) else weights_ref
        policy_map = worker.policy_map
        for policy_id, policy_weights in weights.items():
            if policy_id in policy_map:
                policy_map[policy_id].set_weights(policy_weights)
                applied.append(policy_id)
            else:
                missing.append(policy_id)
        return {"applied": applied, "missing": missing, "error": None}
    except Exception as error:  # noqa: BLE001 - must not raise inside a RolloutWorker
        logger.exception("rllib_addpolicy_fix: could not apply broadcast weights")
        return {"applied": applied, "missing": missing, "error": repr(error)}


def remove_policy(worker: Any, policy_id: str) -> dict[str, Any]:
    """Remove ``policy_id`` if this worker has it (undoing a failed add)."""
    try:
        if policy_id in worker.policy_map:
            worker.remove_policy(policy_id=policy_id)
            return {"removed": True, "error": None}
        return {"removed": False, "error": None}
    except Exception as error:  # noqa: BLE001 - must not raise inside a RolloutWorker
        logger.exception("rllib_addpolicy_fix: could not remove policy %r", policy_id)
        return {"removed": False, "error": repr(error)}


def set_policies_to_train(worker: Any, policies_to_train: Any) -> dict[str, Any]:
    """``worker.set_is_policy_to_train(policies_to_train)``; ``{"error": str | None}``."""
    try:
        worker.set_is_policy_to_train(policies_to_train)
        return {"error": None}
    except Exception as error:  # noqa: BLE001 - must not raise inside a RolloutWorker
        logger.exception("rllib_addpolicy_fix: could not set policies_to_train")
        return {"error": repr(error)}


def policy_weights(worker: Any, policy_ids: list[str] | None) -> dict[str, Any]:
    """``{"weights": {policy_id: weights}, "policy_ids": [...], "error": str | None}`` for
    ``verify()``; ``policy_ids=None`` reads every policy the worker has."""
    weights: dict[str, Any] = {}
    try:
        policy_map = worker.policy_map
        present = list(policy_map.keys())
        for policy_id in present if policy_ids is None else policy_ids:
            if policy_id in policy_map:
                weights[policy_id] = policy_map[policy_id].get_weights()
        return {"weights": weights, "policy_ids": present, "error": None}
    except Exception as error:  # noqa: BLE001 - must not raise inside a RolloutWorker
        logger.exception("rllib_addpolicy_fix: could not read weights for verify()")
        return {"weights": weights, "policy_ids": [], "error": repr(error)}


def policy_digests(worker: Any, policy_ids: list[str]) -> dict[str, str]:
    """``{policy_id: weights_digest}`` for the ``policy_ids`` this worker has; what the shim
    compares when it first meets a worker set whose history it does not know (e.g. restored
    from a checkpoint). Empty on failure."""
    try:
        policy_map = worker.policy_map
        return {
            policy_id: weights_digest(policy_map[policy_id].get_weights())
            for policy_id in policy_ids
            if policy_id in policy_map
        }
    except Exception:  # noqa: BLE001 - must not raise inside a RolloutWorker
        logger.exception("rllib_addpolicy_fix: could not digest policy weights")
        return {}


def weights_digest(tree: Any) -> str:
    """Exact fingerprint of a (nested) weights structure: paths, dtypes, shapes and bytes."""
    import numpy as np

    digest = hashlib.blake2b(digest_size=16)
    for path, leaf in sorted(leaves(tree), key=lambda item: item[0]):
        array = np.ascontiguousarray(np.asarray(leaf))
        digest.update(f"{path}{array.dtype.str}{array.shape}".encode())
        if array.size:
            digest.update(array.view(np.uint8).reshape(-1).data)
    return digest.hexdigest()


def leaves(tree: Any, path: str = "") -> Iterator[tuple[str, Any]]:
    """``(path, leaf)`` for every array (or other leaf) of a nested weights or state structure;
    the one walk that sizing, digests and ``verify()`` share, on the driver and the workers."""
    if isinstance(tree, dict):
        for key, value in tree.items():
            yield from leaves(value, f"{path}/{key}")
    elif isinstance(tree, (list, tuple)):
        for index, value in enumerate(tree):
            yield from leaves(value, f"{path}[{index}]")
    else:
        yield path, tree
