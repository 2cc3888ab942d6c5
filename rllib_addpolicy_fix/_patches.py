"""The wrappers, and installing/removing them with wrapt.

What each wrapper adds to RLlib:

* ``Algorithm.add_policy``: refuses an id that any of the algorithm's worker sets already has
  *before* anything is added (RLlib would add to the training set, then fail on the evaluation
  set), and tells the worker-set wrapper which driver worker holds the truth.
* ``<worker set>.add_policy``: the remote ``add_policy`` calls carry the driver's state as one
  object-store ref: the caller's ``policy_state`` if given, else the state of the policy the
  driver just built (RLlib sends ``None``, so every remote worker kept its own random init).
  A callable ``policies_to_train`` (RLlib's set calls ``list()`` on it) is applied afterwards.
* ``RolloutWorker.add_policy`` (driver only): fills that deferred state right after the driver
  built the policy, before the remote calls are pickled.
* ``<worker set>.sync_weights``: records what RLlib's own syncs delivered, so the shim never
  re-sends it.
* ``Algorithm.step``: before the iteration samples, one blocking broadcast of the policies whose
  driver weights changed (``set_weights``/``set_state`` after an add, ``algo.set_weights``,
  snapshots refreshed in callbacks); after it, the shim's figures in the result dict. Policies
  a learner thread trains (IMPALA/APPO) are left to the algorithm, which pushes them itself.
* ``Algorithm.remove_policy``: forgets the removed policy.
* ``PolicyMap._stash_least_used_policy`` (the driver's map only): when the LRU cache evicts a
  policy the workers already hold, its record follows it into the stash; a changed one stays
  pending and is broadcast from the stash.
"""

from __future__ import annotations

import functools
import logging
import os
import sys
from collections.abc import Callable
from typing import Any

import wrapt

from . import _broadcast, _compat, _remote, _rollback, _tracking
from ._state import SharedPolicyState, fresh_policy_state

logger = logging.getLogger("rllib_addpolicy_fix")

RESULT_KEY = "rllib_addpolicy_fix"
ENV_VAR = "RLLIB_ADDPOLICY_FIX"
OFF_VALUES = frozenset({"0", "off", "false", "no", "disable", "disabled"})

Wrapper = Callable[[Callable[..., Any], Any, tuple[Any, ...], dict[str, Any]], Any]

_active = False
#: target name -> (owner class, attribute, wrapt handle), for uninstall and doctor.
_wrapped: dict[str, tuple[type, str, Any]] = {}
_hooked_modules: set[str] = set()
_warned: set[str] = set()


def _warn_once(key: str, message: str, *args: Any) -> None:
    if key not in _warned:
        _warned.add(key)
        logger.warning(message, *args)


def disabled_by_environment() -> bool:
    return os.environ.get(ENV_VAR, "").strip().lower() in OFF_VALUES


# ---------------------------------------------------------------------------------------------
# Wrappers (wrapt signature: wrapped, instance, args, kwargs)


def _not_old_stack(uses_old_stack: bool) -> bool:
    if not uses_old_stack:
        _warn_once("new-stack", "rllib_addpolicy_fix: this algorithm runs on RLlib's new (or "
                   "hybrid) API stack; the shim leaves it as it is.")
    return not uses_old_stack


def _algorithm_add_policy(wrapped: Any, algo: Any, args: Any, kwargs: Any) -> Any:
    if _not_old_stack(_compat.uses_old_stack(algo)):
        return wrapped(*args, **kwargs)
    arguments = _compat.bind(wrapped, args, kwargs)
    policy_id = arguments["policy_id"]
    with _tracking.LOCK:
        _tracking.bind_algorithm(algo)
        receiving = _compat.groups_receiving_add(algo, arguments)
        for role, group in receiving.items():
            worker = _compat.local_worker(group)
            if worker is not None and policy_id in _compat.policy_ids(worker):
                raise KeyError(
                    f"Policy ID '{policy_id}' already exists in the {role} workers' policy map! "
                    "Make sure you use a Policy ID that has not been taken yet. Policy IDs "
                    f"that are already in your policy map: {_compat.policy_ids(worker)}"
                )
        try:
            return wrapped(*args, **kwargs)
        except BaseException:
            for group in receiving.values():  # e.g. added for training, failed for evaluation
                _rollback.undo_add(group, policy_id)
            raise


def _group_add_policy(wrapped: Any, group: Any, args: Any, kwargs: Any) -> Any:
    if _not_old_stack(_compat.group_uses_old_stack(group)):
        return wrapped(*args, **kwargs)
    with _tracking.LOCK:
        arguments = _compat.bind(wrapped, args, kwargs)
        policy_id = arguments["policy_id"]
        to_train = arguments.get("policies_to_train")
        if callable(to_train):  # RLlib's set calls list() on it; the shim applies it afterwards
            _check_sendable(to_train, group)
            kwargs = dict(kwargs, policies_to_train=None)
        record = _tracking.record_for(group)
        truth, own = record.truth(), _compat.local_worker(group)
        shared = None
        if _compat.num_remote_workers(group) and arguments.get("policy") is None:
            if arguments.get("policy_state") is not None:
                shared = SharedPolicyState(arguments["policy_state"])
            elif truth is not None and truth is not own and policy_id in truth.policy_map:
                shared = SharedPolicyState(fresh_policy_state(truth.policy_map[policy_id]))
            elif own is not None:
                shared = SharedPolicyState(deferred=True)
        if shared is not None:
            kwargs = dict(kwargs, policy_state=shared)
        was_absent = bool(_rollback.absent_from({"group": group}, policy_id))
        try:
            result = wrapped(*args, **kwargs)
        except BaseException:
            if was_absent:  # a duplicate id fails before adding anything: leave it alone
                _rollback.undo_add(group, policy_id)
            raise
        if shared is None or not shared.pending:
            record.mark_delivered([policy_id])
        if callable(to_train):
            _set_policies_to_train(group, to_train)
        return result


def _check_sendable(policies_to_train: Callable[..., Any], group: Any) -> None:
    """Refuse, before anything is added, a callable the remote workers could not receive."""
    if not _compat.num_remote_workers(group):
        return
    import ray.cloudpickle

    try:
        ray.cloudpickle.dumps(policies_to_train)
    except Exception as error:
        raise TypeError(
            f"add_policy(policies_to_train={policies_to_train!r}): the callable cannot be "
            f"pickled for the remote workers ({error}); pass a picklable function or a list "
            "of policy ids"
        ) from error


def _set_policies_to_train(group: Any, policies_to_train: Callable[..., Any]) -> None:
    """What RLlib's ``RolloutWorker.add_policy`` would have done with the callable, on the
    set's driver-side worker and every remote worker."""
    own = _compat.local_worker(group)
    if own is not None:
        own.set_is_policy_to_train(policies_to_train)
    if _compat.num_remote_workers(group):
        apply = functools.partial(_remote.set_policies_to_train,
                                  policies_to_train=policies_to_train)
        for worker_id, outcome in _compat.foreach_remote(group, apply):
            if outcome.get("error"):
                logger.warning("rllib_addpolicy_fix: remote worker %s did not take "
                               "policies_to_train: %s", worker_id, outcome["error"])


def _worker_add_policy(wrapped: Any, worker: Any, args: Any, kwargs: Any) -> Any:
    state = kwargs.get("policy_state")
    if not isinstance(state, SharedPolicyState) or not state.deferred:
        return wrapped(*args, **kwargs)
    result = wrapped(*args, **dict(kwargs, policy_state=None))
    policy_id = _compat.bind(wrapped, args, kwargs)["policy_id"]
    state.put(fresh_policy_state(worker.policy_map[policy_id]))
    return result


def _group_sync_weights(wrapped: Any, group: Any, args: Any, kwargs: Any) -> Any:
    result = wrapped(*args, **kwargs)
    if not _compat.group_uses_old_stack(group):
        return result
    with _tracking.LOCK:
        arguments = _compat.bind(wrapped, args, kwargs)
        record = _tracking.record_for(group)
        source = _compat.sync_weights_source(arguments) or _compat.local_worker(group)
        if source is record.truth() and arguments.get("to_worker_indices") is None:
            record.mark_delivered(arguments.get("policies"))
    return result


def _algorithm_step(wrapped: Any, algo: Any, args: Any, kwargs: Any) -> Any:
    if _not_old_stack(_compat.uses_old_stack(algo)):
        return wrapped(*args, **kwargs)
    with _tracking.LOCK:
        records = _tracking.bind_algorithm(algo)
        if "training" in records:
            # A learner thread's own updates reach the workers through the algorithm itself.
            trained_by_rllib = _compat.trained_in_background(algo)
            _broadcast.push_pending(records["training"].group, skip=trained_by_rllib)
    result = wrapped(*args, **kwargs)
    if isinstance(result, dict):
        result[RESULT_KEY] = _tracking.take_result(algo)
    return result


def _algorithm_remove_policy(wrapped: Any, algo: Any, args: Any, kwargs: Any) -> Any:
    result = wrapped(*args, **kwargs)
    if not _compat.uses_old_stack(algo):
        return result
    policy_id = _compat.bind(wrapped, args, kwargs)["policy_id"]
    with _tracking.LOCK:
        for record in _tracking.bind_algorithm(algo).values():
            record.forget(policy_id)
    return result


def _policy_map_stash(wrapped: Any, policy_map: Any, args: Any, kwargs: Any) -> Any:
    records = _tracking.records_for_truth_map(policy_map)
    if not records:  # not a driver-side truth map (e.g. on a remote worker): nothing to do
        return wrapped(*args, **kwargs)
    with _tracking.LOCK:
        policy_id = _compat.policy_to_stash(policy_map)
        policy = _compat.loaded_policy_in_map(policy_map, policy_id)
        if policy_id is None or policy is None:
            return wrapped(*args, **kwargs)
        clean = [record for record in records if record.before_stash(policy_id, policy)]
        result = wrapped(*args, **kwargs)
        for record in clean:
            record.after_stash(policy_id)
        return result


WRAPPERS: dict[str, Wrapper] = {
    "algorithm_add_policy": _algorithm_add_policy,
    "algorithm_remove_policy": _algorithm_remove_policy,
    "algorithm_step": _algorithm_step,
    "group_add_policy": _group_add_policy,
    "group_sync_weights": _group_sync_weights,
    "worker_add_policy": _worker_add_policy,
    "policy_map_stash": _policy_map_stash,
}


# ---------------------------------------------------------------------------------------------
# Install / uninstall


def install() -> bool:
    """Wrap RLlib now, or as soon as its modules are imported. True when the fix is active."""
    global _active
    if disabled_by_environment():
        _warn_once("env", "rllib_addpolicy_fix: disabled by %s=%s; RLlib is left as it is.",
                   ENV_VAR, os.environ.get(ENV_VAR))
        return False
    version = _compat.installed_ray_version()
    if not _compat.ray_supported(version):
        _warn_once(
            "version",
            "rllib_addpolicy_fix: Ray %s is outside the supported range %s; RLlib is left as "
            "it is.",
            version,
            _compat.SUPPORTED_RAY,
        )
        return False
    with _tracking.LOCK:
        if _active:
            return True
        _active = True
        assert version is not None
        for module_name in sorted({target.module for _, target in _compat.targets_for(version)}):
            if module_name in _hooked_modules:
                if module_name in sys.modules:
                    _on_import(sys.modules[module_name])
            else:
                _hooked_modules.add(module_name)
                wrapt.register_post_import_hook(_on_import, module_name)
    return True


def uninstall() -> None:
    """Restore every wrapped attribute to the original object (identity preserved)."""
    global _active
    with _tracking.LOCK:
        _active = False
        for owner, attribute, handle in _wrapped.values():
            wrapt.unwrap_object(owner, attribute, handle, missing_ok=True)
        _wrapped.clear()
        _tracking.stop_watching_torch()
        cloudpickle = sys.modules.get("ray.cloudpickle")
        if cloudpickle is not None and _remote.__name__ in _pickled_by_value(cloudpickle):
            cloudpickle.unregister_pickle_by_value(_remote)


def is_installed() -> bool:
    return _active


def wrapped_targets() -> list[str]:
    """Names of the attributes wrapped right now."""
    return sorted(_wrapped)


def _pickled_by_value(cloudpickle: Any) -> set[str]:
    registry = getattr(cloudpickle, "cloudpickle", cloudpickle)
    return set(getattr(registry, "_PICKLE_BY_VALUE_MODULES", ()))


def _on_import(module: Any) -> None:
    """Post-import hook: wrap what this module defines. Never breaks the host import."""
    try:
        with _tracking.LOCK:
            if not _active:
                return
            version = _compat.installed_ray_version()
            if version is None:
                return
            import ray.cloudpickle

            if _remote.__name__ not in _pickled_by_value(ray.cloudpickle):
                # Remote nodes need no copy of this package: what runs there travels by value.
                ray.cloudpickle.register_pickle_by_value(_remote)
            for role, target in _compat.targets_for(version):
                if target.module == module.__name__:
                    _wrap(module, target, WRAPPERS[role])
    except Exception:  # noqa: BLE001 - a failed patch must leave RLlib importable and unpatched
        logger.exception("rllib_addpolicy_fix: could not patch %s", module.__name__)


def _wrap(module: Any, target: _compat.Target, wrapper: Wrapper) -> None:
    owner = getattr(module, target.owner, None)
    if not isinstance(owner, type) or target.attribute not in vars(owner):
        logger.debug("rllib_addpolicy_fix: %s not defined here; skipped", target.name)
        return
    if target.name in _wrapped:
        return
    handle = wrapt.wrap_function_wrapper(owner, target.attribute, wrapper)
    _wrapped[target.name] = (owner, target.attribute, handle)
