"""The only code of ours that runs inside remote RolloutWorkers.

This module is registered with Ray's cloudpickle to be pickled *by value*, so remote nodes need no
copy of the package: keep it to the standard library and ``ray``, and import nothing from the rest
of the package. Every function here swallows its errors and reports them in its return value: an
exception escaping a function run through ``foreach_worker`` kills the RolloutWorker.
"""

from __future__ import annotations

import logging
from typing import Any

logger = logging.getLogger("rllib_addpolicy_fix.remote")


def tag_with_worker_index(worker: Any, func: Any) -> tuple[int, Any]:
    """``(worker.worker_index, func(worker))``; ``func`` is one of the never-raising functions
    below."""
    return getattr(worker, "worker_index", -1), func(worker)


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
