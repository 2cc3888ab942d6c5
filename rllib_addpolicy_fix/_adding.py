"""The ``add_policy`` wrappers: a new policy reaches every remote worker with the driver's
state, in the remote ``add_policy`` call itself, and a failed add is undone everywhere.

* ``Algorithm.add_policy``: refuses an id that any of the algorithm's worker sets already has
  *before* anything is added (RLlib would add to the training set, then fail on the evaluation
  set), and rolls back what a failed call added.
* ``<worker set>.add_policy``: the remote ``add_policy`` calls carry the driver's state as one
  object-store ref: the caller's ``policy_state`` if given, else the state of the policy the
  driver just built (RLlib sends ``None``, so every remote worker kept its own random init).
  A callable ``policies_to_train`` (RLlib's set calls ``list()`` on it) is applied afterwards.
* ``RolloutWorker.add_policy`` (driver only): fills that deferred state right after the driver
  built the policy, before the remote calls are pickled.
"""

from __future__ import annotations

import dataclasses
import functools
import logging
from collections.abc import Callable
from typing import Any

from . import _compat, _faults, _iteration, _remote, _rollback, _tracking
from ._guard import bind, on_old_stack, own_work
from ._state import SharedPolicyState, fresh_policy_state

logger = logging.getLogger("rllib_addpolicy_fix")


def algorithm_add_policy(wrapped: Any, algo: Any, args: Any, kwargs: Any) -> Any:
    _iteration.driver_changed()
    receiving: dict[str, Any] = {}
    refusal: KeyError | None = None
    policy_id = ""
    with _tracking.held():
        with own_work("checking the new policy id against every worker set"):
            arguments = bind(wrapped, args, kwargs)
            if arguments is not None and on_old_stack(_compat.uses_old_stack(algo)):
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


def group_add_policy(wrapped: Any, group: Any, args: Any, kwargs: Any) -> Any:
    _iteration.driver_changed()
    with _tracking.held():
        plan: _GroupAdd | None = None
        refusal: TypeError | None = None
        call_kwargs = kwargs
        with own_work("preparing the remote add_policy calls"):
            arguments = bind(wrapped, args, kwargs)
            if arguments is not None and on_old_stack(_compat.group_uses_old_stack(group)):
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
        record,
        policy_id,
        was_absent=bool(_rollback.absent_from({"group": group}, policy_id)),
        shared=shared,
        policies_to_train=to_train if callable(to_train) else None,
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
    except Exception as error:  # noqa: BLE001 - any pickling error: the workers cannot get it
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
        apply = functools.partial(
            _remote.set_policies_to_train, policies_to_train=policies_to_train
        )
        replies = _compat.foreach_remote(group, apply)
        for worker_id, outcome in replies:
            if outcome.get("error"):
                logger.warning(
                    "rllib_addpolicy_fix: remote worker %s did not take policies_to_train: %s",
                    worker_id,
                    outcome["error"],
                )
        _faults.settle(group, replies, "the new policies_to_train")


def worker_add_policy(wrapped: Any, worker: Any, args: Any, kwargs: Any) -> Any:
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
