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

import contextlib
import dataclasses
import functools
import logging
import os
import sys
from collections.abc import Callable, Iterator
from typing import Any

import wrapt

from . import _broadcast, _busy, _compat, _faults, _remote, _rollback, _tracking
from ._state import SharedPolicyState, fresh_policy_state

logger = logging.getLogger("rllib_addpolicy_fix")

RESULT_KEY = "rllib_addpolicy_fix"
ENV_VAR = "RLLIB_ADDPOLICY_FIX"
OFF_VALUES = frozenset({"0", "off", "false", "no", "disable", "disabled"})

Wrapper = Callable[[Callable[..., Any], Any, tuple[Any, ...], dict[str, Any]], Any]

_active = False
#: target name -> (owner class, attribute, wrapt handle or, for by-reference wrappers, the
#: original function), for uninstall and doctor.
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
#
# Each wrapper does the shim's own work inside ``own_work(...)``: should that work fail, the
# failure is logged once and RLlib's call runs exactly as it would without the shim. Errors the
# shim raises on purpose (a duplicate id, an unsendable ``policies_to_train``) are built inside
# and raised outside the guard.


@contextlib.contextmanager
def own_work(what: str) -> Iterator[None]:
    """Swallow (and log once per ``what``) a failure of the shim's own work: it must never
    become the user's failure."""
    try:
        yield
    except _faults.WorkerFault as fault:  # a worker's failure, not the shim's: RLlib's way
        raise fault.error from None
    except Exception:  # noqa: BLE001 - the documented contract: log, never raise
        if what not in _warned:
            _warned.add(what)
            logger.warning(
                "rllib_addpolicy_fix: %s failed; RLlib's own call went ahead unchanged, so the fix "
                "may not be in effect for it (remote workers may hold stale weights until the next "
                "successful broadcast). Please report this with the traceback below.",
                what, exc_info=True,
            )


def _on_old_stack(uses_old_stack: bool) -> bool:
    if not uses_old_stack:
        _warn_once("new-stack", "rllib_addpolicy_fix: this algorithm runs on RLlib's new (or "
                   "hybrid) API stack; the shim leaves it as it is.")
    return uses_old_stack


def _bind(wrapped: Any, args: tuple[Any, ...], kwargs: dict[str, Any]) -> dict[str, Any] | None:
    """The call's arguments by name, or None when they do not fit (RLlib raises its own
    error for that call, unchanged)."""
    try:
        return _compat.bind(wrapped, args, kwargs)
    except TypeError:
        return None


def _algorithm_add_policy(wrapped: Any, algo: Any, args: Any, kwargs: Any) -> Any:
    receiving: dict[str, Any] = {}
    refusal: KeyError | None = None
    policy_id = ""
    with _tracking.held():
        with own_work("checking the new policy id against every worker set"):
            arguments = _bind(wrapped, args, kwargs)
            if arguments is not None and _on_old_stack(_compat.uses_old_stack(algo)):
                policy_id = arguments["policy_id"]
                _tracking.bind_algorithm(algo)
                receiving = _compat.groups_receiving_add(algo, arguments)
                refusal = _duplicate_id(receiving, policy_id)
        if refusal is not None:
            raise refusal
        try:
            return wrapped(*args, **kwargs)
        except BaseException:
            with own_work("undoing a failed add"):
                for group in receiving.values():  # e.g. added for training, failed for eval
                    _rollback.undo_add(group, policy_id)
            raise


def _duplicate_id(receiving: dict[str, Any], policy_id: str) -> KeyError | None:
    """RLlib's own error for a duplicate id, found before anything is added (RLlib would add
    to the training set, then fail on the evaluation set)."""
    for role, group in receiving.items():
        worker = _compat.local_worker(group)
        if worker is not None and policy_id in _compat.policy_ids(worker):
            return KeyError(
                f"Policy ID '{policy_id}' already exists in the {role} workers' policy map! "
                "Make sure you use a Policy ID that has not been taken yet. Policy IDs "
                f"that are already in your policy map: {_compat.policy_ids(worker)}"
            )
    return None


@dataclasses.dataclass
class _GroupAdd:
    """What the worker-set wrapper changed about one ``add_policy`` call."""

    record: _tracking.GroupRecord
    policy_id: str
    was_absent: bool
    shared: SharedPolicyState | None = None
    policies_to_train: Callable[..., Any] | None = None  # a callable, applied afterwards


def _group_add_policy(wrapped: Any, group: Any, args: Any, kwargs: Any) -> Any:
    with _tracking.held():
        plan: _GroupAdd | None = None
        refusal: TypeError | None = None
        call_kwargs = kwargs
        with own_work("preparing the remote add_policy calls"):
            arguments = _bind(wrapped, args, kwargs)
            if arguments is not None and _on_old_stack(_compat.group_uses_old_stack(group)):
                plan, refusal, call_kwargs = _plan_group_add(group, arguments, kwargs)
        if refusal is not None:
            raise refusal
        if plan is None:
            return wrapped(*args, **kwargs)
        try:
            result = wrapped(*args, **call_kwargs)
        except BaseException:
            if plan.was_absent:  # a duplicate id fails before adding anything: leave it alone
                with own_work("undoing a failed add"):
                    _rollback.undo_add(group, plan.policy_id)
            raise
        with own_work("recording the added policy"):
            if plan.shared is None or not plan.shared.pending:
                plan.record.mark_delivered([plan.policy_id])
            if plan.policies_to_train is not None:
                _set_policies_to_train(group, plan.policies_to_train)
        return result


def _plan_group_add(
    group: Any, arguments: dict[str, Any], kwargs: dict[str, Any]
) -> tuple[_GroupAdd | None, TypeError | None, dict[str, Any]]:
    policy_id = arguments["policy_id"]
    to_train = arguments.get("policies_to_train")
    if callable(to_train):  # RLlib's set calls list() on it; the shim applies it afterwards
        refusal = _unsendable(to_train, group)
        if refusal is not None:
            return None, refusal, kwargs
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
    plan = _GroupAdd(
        record, policy_id, was_absent=bool(_rollback.absent_from({"group": group}, policy_id)),
        shared=shared, policies_to_train=to_train if callable(to_train) else None,
    )
    return plan, None, kwargs


def _unsendable(policies_to_train: Callable[..., Any], group: Any) -> TypeError | None:
    """The error for a callable the remote workers could not receive, found before anything
    is added."""
    if not _compat.num_remote_workers(group):
        return None
    import ray.cloudpickle

    try:
        ray.cloudpickle.dumps(policies_to_train)
    except Exception as error:
        refusal = TypeError(
            f"add_policy(policies_to_train={policies_to_train!r}): the callable cannot be "
            f"pickled for the remote workers ({error}); pass a picklable function or a list "
            "of policy ids"
        )
        refusal.__cause__ = error
        return refusal
    return None


def _set_policies_to_train(group: Any, policies_to_train: Callable[..., Any]) -> None:
    """What RLlib's ``RolloutWorker.add_policy`` would have done with the callable, on the
    set's driver-side worker and every remote worker."""
    own = _compat.local_worker(group)
    if own is not None:
        own.set_is_policy_to_train(policies_to_train)
    if _compat.num_remote_workers(group):
        apply = functools.partial(_remote.set_policies_to_train,
                                  policies_to_train=policies_to_train)
        replies = _compat.foreach_remote(group, apply)
        for worker_id, outcome in replies:
            if outcome.get("error"):
                logger.warning("rllib_addpolicy_fix: remote worker %s did not take "
                               "policies_to_train: %s", worker_id, outcome["error"])
        _faults.settle(group, replies, "the new policies_to_train")


def _worker_add_policy(wrapped: Any, worker: Any, args: Any, kwargs: Any) -> Any:
    state = kwargs.get("policy_state")
    if not isinstance(state, SharedPolicyState) or not state.deferred:
        return wrapped(*args, **kwargs)
    # Only the shim passes a deferred state: RLlib builds the policy without it, and the shim
    # fills it from the new policy before the remote calls are pickled. Unfilled, the remote
    # calls get ``None``, RLlib's own default.
    result = wrapped(*args, **dict(kwargs, policy_state=None))
    with own_work("reading the new policy's initial state"):
        policy_id = _compat.bind(wrapped, args, kwargs)["policy_id"]
        state.put(fresh_policy_state(worker.policy_map[policy_id]))
    return result


def _group_sync_weights(wrapped: Any, group: Any, args: Any, kwargs: Any) -> Any:
    with _tracking.held():  # RLlib's own sync reaches the workers: push nothing before it
        result = wrapped(*args, **kwargs)
        with own_work("recording what RLlib's sync_weights delivered"):
            arguments = _bind(wrapped, args, kwargs)
            if arguments is not None and _compat.group_uses_old_stack(group):
                record = _tracking.record_for(group)
                own = _compat.local_worker(group)
                source = _compat.sync_weights_source(arguments) or own
                if source is not own and hasattr(source, "policy_map"):
                    # The evaluation set, synced from the training set's driver worker at
                    # each evaluate(): that worker holds the truth for this set too.
                    record.set_truth(source)
                if source is record.truth() and arguments.get("to_worker_indices") is None:
                    record.mark_delivered(arguments.get("policies"))
    return result


def _group_remote_call(wrapped: Any, group: Any, args: Any, kwargs: Any) -> Any:
    """Before RLlib reaches a set's remote workers for anything (sampling, evaluation, weight
    pushes, restores), the policies whose driver weights changed go out, blocking.

    This is the per-iteration broadcast. It lives on the worker set, not on ``Algorithm.step``,
    because Ray copies an Algorithm's methods into the actor class of a Tune trial or
    ``ray.remote(PPO)``, where a wrapper on ``Algorithm`` may never run; the worker set is
    imported and used in whichever process hosts the Algorithm.
    """
    if not _busy.busy_here():  # not the shim's own call, nor inside a sync or an add
        with own_work("the broadcast before the remote workers are used"):
            if _compat.group_uses_old_stack(group):
                _broadcast.push_before_use(group)
    return wrapped(*args, **kwargs)


def _algorithm_sets_up_workers(wrapped: Any, algo: Any, args: Any, kwargs: Any) -> Any:
    """RLlib builds the workers, or restores their state (from a checkpoint, after a restart):
    nothing is pushed meanwhile. What the driver holds afterwards is compared with the workers
    once, by digest, at their first use."""
    with _busy.quiet():
        return wrapped(*args, **kwargs)


def _algorithm_step(wrapped: Any, algo: Any, args: Any, kwargs: Any) -> Any:
    """The shim's figures in the result, and a warning if the iteration reached the workers
    without the pre-use broadcast (e.g. a worker set whose class bypasses the wrapped calls)."""
    watched: _tracking.GroupRecord | None = None
    uses_before, pending_before = 0, frozenset[str]()
    with own_work("watching this training iteration"):
        if _on_old_stack(_compat.uses_old_stack(algo)):
            with _tracking.held():
                watched = _tracking.bind_algorithm(algo).get("training")
                if watched is not None and _compat.num_remote_workers(watched.group):
                    uses_before = watched.uses
                    pending_before = frozenset(_broadcast.pending_before_use(watched))
    result = wrapped(*args, **kwargs)
    if watched is not None:
        with own_work("reporting the shim's figures in the result"):
            with _tracking.held():
                if pending_before and watched.uses == uses_before:
                    still = pending_before & set(_broadcast.pending_before_use(watched))
                    if still:
                        _note_bypass(watched, sorted(still))
                if isinstance(result, dict):
                    result[RESULT_KEY] = _tracking.take_result(algo)
    return result


def _note_bypass(record: _tracking.GroupRecord, policy_ids: list[str]) -> None:
    record.bypassed = (
        f"a training iteration used the remote workers without the shim's pre-use broadcast "
        f"(the worker set {type(record.group).__qualname__} bypasses RLlib's foreach calls), "
        f"so {policy_ids} may be stale there; call rllib_addpolicy_fix.sync(algo) after "
        "changing weights on the driver"
    )
    _warn_once("bypass", "rllib_addpolicy_fix: %s.", record.bypassed)


def _algorithm_remove_policy(wrapped: Any, algo: Any, args: Any, kwargs: Any) -> Any:
    result = wrapped(*args, **kwargs)
    with own_work("forgetting the removed policy"):
        arguments = _bind(wrapped, args, kwargs)
        if arguments is not None and _compat.uses_old_stack(algo):
            with _tracking.held():
                for record in _tracking.bind_algorithm(algo).values():
                    record.forget(arguments["policy_id"])
    return result


def _policy_map_stash(wrapped: Any, policy_map: Any, args: Any, kwargs: Any) -> Any:
    records: list[_tracking.GroupRecord] = []
    with own_work("following a policy into the policy cache's stash"):
        # Empty on anything but a driver-side truth map (e.g. on a remote worker).
        records = _tracking.records_for_truth_map(policy_map)
    if not records:
        return wrapped(*args, **kwargs)
    with _tracking.held():
        policy_id: str | None = None
        clean: list[_tracking.GroupRecord] = []
        with own_work("following a policy into the policy cache's stash"):
            policy_id = _compat.policy_to_stash(policy_map)
            policy = _compat.loaded_policy_in_map(policy_map, policy_id)
            if policy_id is not None and policy is not None:
                clean = [record for record in records if record.before_stash(policy_id, policy)]
        result = wrapped(*args, **kwargs)
        with own_work("following a policy into the policy cache's stash"):
            for record in clean:
                record.after_stash(str(policy_id))
        return result


WRAPPERS: dict[str, Wrapper] = {
    "algorithm_add_policy": _algorithm_add_policy,
    "algorithm_remove_policy": _algorithm_remove_policy,
    "algorithm_step": _algorithm_step,
    "algorithm_sets_up_workers": _algorithm_sets_up_workers,
    "group_add_policy": _group_add_policy,
    "group_sync_weights": _group_sync_weights,
    "group_remote_call": _group_remote_call,
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
    with _tracking.held():
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
    with _tracking.held():
        _active = False
        for owner, attribute, handle in _wrapped.values():
            if isinstance(handle, wrapt.FunctionWrapper):
                wrapt.unwrap_object(owner, attribute, handle, missing_ok=True)
            elif getattr(vars(owner).get(attribute), "__wrapped__", None) is handle:
                setattr(owner, attribute, handle)  # a by-reference wrapper: the original back
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
        with _tracking.held():
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
    if target.by_reference:
        original = vars(owner)[target.attribute]
        setattr(owner, target.attribute, _by_reference(original, wrapper))
        _wrapped[target.name] = (owner, target.attribute, original)
    else:
        handle = wrapt.wrap_function_wrapper(owner, target.attribute, wrapper)
        _wrapped[target.name] = (owner, target.attribute, handle)


def _by_reference(original: Callable[..., Any], wrapper: Wrapper) -> Callable[..., Any]:
    """``wrapper`` around the method ``original`` as a plain function with the original's
    module and qualified name.

    Why not wrapt here: Ray copies every method of a class it turns into an actor (each Tune
    trial of an Algorithm, ``ray.remote(PPO)``) into the actor subclass, and ships that class
    with cloudpickle, which pickles a wrapt ``FunctionWrapper`` as the bare function it wraps:
    the trial would run RLlib's original. A plain function whose ``__module__`` and
    ``__qualname__`` name the place it is installed (``Algorithm.step``) is pickled by
    reference instead, so the trial looks ``Algorithm.step`` up by name in its own process and
    runs this wrapper wherever the shim is active there, RLlib's original where it is not.
    """

    @functools.wraps(original)
    def method(self: Any, *args: Any, **kwargs: Any) -> Any:
        if not _active:  # uninstalled, but still referenced by an actor class built before
            return original(self, *args, **kwargs)
        return wrapper(original.__get__(self, type(self)), self, args, kwargs)

    return method
