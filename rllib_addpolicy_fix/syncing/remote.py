"""The only code of ours that runs inside remote RolloutWorkers.

This module is registered with Ray's cloudpickle to be pickled *by value*, so remote nodes need no
copy of the package: keep it to the standard library and ``ray``, and import nothing from the rest
of the package. Every function here swallows its errors and reports them in its return value: an
exception escaping a function run through ``foreach_worker`` kills the RolloutWorker.
"""

from __future__ import annotations

import contextlib
import hashlib
import logging
from collections.abc import Iterator
from typing import Any

from .remote_state import held_versions, publish, stashed_refs

logger = logging.getLogger("rllib_addpolicy_fix.remote")

#: ``{policy_id: (version, digest)}`` a delivery publishes on each worker once applied
#: (``remote_state``; the driver's side is ``versions``).
Versions = dict[str, tuple[int, str]]


@contextlib.contextmanager
def only_new_policy_callbacks(worker: Any, policy_id: str) -> Iterator[None]:
    """While ``worker.add_policy(policy_id, ...)`` runs, RLlib's ``on_create_policy`` loop
    calls the callback for the new policy only, as RLlib documents it, instead of for every
    policy in the map: that loop loads each policy evicted from the LRU policy cache
    (``Policy.from_state``) and evicts others, so an add cost O(league size) once the league
    outgrew the cache. An instance attribute shadows the class method for this one call, so it
    works on a worker that has not installed the shim."""
    shadowing = "_call_callbacks_on_create_policy"

    def call_for_the_new_policy() -> None:
        worker.callbacks.on_create_policy(policy_id=policy_id, policy=worker.policy_map[policy_id])

    installed = False
    try:
        if shadowing not in vars(worker):
            vars(worker)[shadowing] = call_for_the_new_policy
            installed = True
    except Exception:  # noqa: BLE001 - RLlib's own loop then runs, as without the shim
        logger.exception("rllib_addpolicy_fix: could not limit on_create_policy to %r", policy_id)
    try:
        yield
    finally:
        if installed:
            vars(worker).pop(shadowing, None)


def add_policies(
    worker: Any, policy_ids: list[str], payload_ref: Any, versions: Versions | None = None
) -> dict[str, Any]:
    """The remote half of adds the driver held until the workers were next used: for each
    policy of ``payload_ref`` (``{"kwargs": {policy_id: add_policy kwargs}, "states":
    {policy_id: state}}``, put once for every worker), ``worker.add_policy(**kwargs)`` with the
    driver's state of that moment. A policy the worker already has (a worker RLlib restored
    from the driver's state meanwhile) only takes the state. Each policy built publishes its
    ``versions`` entry.

    Returns ``{"added": [...], "errors": {policy_id: str}}``; a policy that failed to build is
    not left half-added here.
    """
    added: list[str] = []
    errors: dict[str, str] = {}
    try:
        import ray

        payload = ray.get(payload_ref)
        adds, states = payload["kwargs"], payload["states"]
    except Exception as error:  # noqa: BLE001 - must not raise inside a RolloutWorker
        logger.exception("rllib_addpolicy_fix: could not fetch the added policies' states")
        return {"added": added, "errors": {pid: repr(error) for pid in policy_ids}}
    for policy_id, kwargs in adds.items():
        try:
            policy_map = worker.policy_map
            if policy_id in policy_map:
                set_policy_state(policy_map, policy_id, states[policy_id])
            else:
                with only_new_policy_callbacks(worker, policy_id):
                    worker.add_policy(**dict(kwargs, policy_state=states[policy_id]))
            added.append(policy_id)
            if versions and policy_id in versions:
                publish(worker, policy_id, *versions[policy_id])
        except Exception as error:  # noqa: BLE001 - must not raise inside a RolloutWorker
            logger.exception("rllib_addpolicy_fix: could not add policy %r", policy_id)
            errors[policy_id] = f"{type(error).__name__}: {error}"
            try:
                if policy_id in worker.policy_map:
                    worker.remove_policy(policy_id=policy_id)
            except Exception:  # noqa: BLE001
                logger.exception("rllib_addpolicy_fix: could not remove half-added %r", policy_id)
    return {"added": added, "errors": errors}


def set_policy_state(policy_map: Any, policy_id: str, state: dict[str, Any]) -> None:
    """``policy_map[policy_id].set_state(state)``, or for a policy in the LRU cache's stash, the
    stash replaced (see :func:`set_policy_weights`)."""
    refs = stashed_refs(policy_map, policy_id)
    if refs is None:
        policy_map[policy_id].set_state(state)
    else:
        restash(refs, policy_id, state)


def restash(refs: dict[str, Any], policy_id: str, update: dict[str, Any]) -> None:
    """Replace a stashed policy's state in the LRU cache's stash by one with ``update`` applied:
    RLlib rebuilds the policy from it when it is next used."""
    import ray

    stashed = dict(ray.get(refs[policy_id]))
    stashed.update(update)
    refs[policy_id] = ray.put(stashed)


def set_policy_weights(
    worker: Any, weights_ref: Any, versions: Versions | None = None
) -> dict[str, Any]:
    """Apply ``{policy_id: weights}`` (or an object-store ref to it) for the policies this
    worker has, each publishing its ``versions`` entry once applied. A policy evicted from the
    worker's LRU policy cache is not loaded for it (``Policy.from_state``, then another
    evicted): its stashed state takes the weights, and RLlib loads it with them when it is
    next used.

    Returns ``{"applied": [...], "missing": [...], "published": [...], "error": str | None}``.
    """
    applied: list[str] = []
    missing: list[str] = []
    published: list[str] = []
    try:
        import ray

        weights = ray.get(weights_ref) if isinstance(weights_ref, ray.ObjectRef) else weights_ref
        policy_map = worker.policy_map
        for policy_id, policy_weights in weights.items():
            if policy_id not in policy_map:
                missing.append(policy_id)
                continue
            refs = stashed_refs(policy_map, policy_id)
            if refs is None:
                policy_map[policy_id].set_weights(policy_weights)
            else:
                restash(refs, policy_id, {"weights": policy_weights})
            applied.append(policy_id)
            if (
                versions
                and policy_id in versions
                and publish(worker, policy_id, *versions[policy_id])
            ):
                published.append(policy_id)
        return {"applied": applied, "missing": missing, "published": published, "error": None}
    except Exception as error:  # noqa: BLE001 - must not raise inside a RolloutWorker
        logger.exception("rllib_addpolicy_fix: could not apply broadcast weights")
        return {
            "applied": applied,
            "missing": missing,
            "published": published,
            "error": repr(error),
        }


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
    """``{"weights": {policy_id: weights}, "policy_ids": [...], "versions": {policy_id:
    version}, "error": str | None}`` for ``verify()``; ``policy_ids=None`` reads every policy
    the worker has; ``versions`` are those the point-of-use check last confirmed there."""
    weights: dict[str, Any] = {}
    try:
        policy_map = worker.policy_map
        present = list(policy_map.keys())
        for policy_id in present if policy_ids is None else policy_ids:
            if policy_id in policy_map:
                weights[policy_id] = read_weights(policy_map, policy_id)
        versions = held_versions(worker)
        return {"weights": weights, "policy_ids": present, "versions": versions, "error": None}
    except Exception as error:  # noqa: BLE001 - must not raise inside a RolloutWorker
        logger.exception("rllib_addpolicy_fix: could not read weights for verify()")
        return {"weights": weights, "policy_ids": [], "versions": {}, "error": repr(error)}


def policy_digests(worker: Any, policy_ids: list[str]) -> dict[str, str]:
    """``{policy_id: weights_digest}`` for the ``policy_ids`` this worker has; what the shim
    compares when it first meets a worker set whose history it does not know (e.g. restored
    from a checkpoint). Empty on failure."""
    try:
        policy_map = worker.policy_map
        return {
            policy_id: weights_digest(read_weights(policy_map, policy_id))
            for policy_id in policy_ids
            if policy_id in policy_map
        }
    except Exception:  # noqa: BLE001 - must not raise inside a RolloutWorker
        logger.exception("rllib_addpolicy_fix: could not digest policy weights")
        return {}


def read_weights(policy_map: Any, policy_id: str) -> Any:
    """A policy's weights, read from the LRU cache's stash if it is there, never loaded."""
    refs = stashed_refs(policy_map, policy_id)
    if refs is None:
        return policy_map[policy_id].get_weights()
    import ray

    return ray.get(refs[policy_id])["weights"]


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
