"""The ``add_policy`` wrappers: a new policy reaches every remote worker with the driver's
state, in the remote ``add_policy`` call itself, and a failed add is undone everywhere.

* ``Algorithm.add_policy``: refuses an id that any of the algorithm's worker sets already has
  *before* anything is added (RLlib would add to the training set, then fail on the evaluation
  set), and rolls back what a failed call added.
* ``<worker set>.add_policy``: RLlib builds the policy on the set's driver-side worker; the
  remote half is held and sent, with the driver's state of that moment, when the remote workers
  are next used (``syncing/held_adds``: RLlib sent ``policy_state=None`` right away, so every remote
  worker kept its own random init, and a driver-side copy after the add never reached them). A
  callable ``policies_to_train`` (RLlib's set calls ``list()`` on it) is applied afterwards.
* ``RolloutWorker.add_policy`` (any process with the shim): ``on_create_policy`` runs for the
  new policy only, as RLlib documents it, not for every policy in the map (which loaded every
  policy the LRU cache had stashed, on every add).
"""

from __future__ import annotations

import contextlib
import dataclasses
import functools
from collections.abc import Callable
from typing import Any

from .. import _compat
from .._compat import bind
from .._guard import logger, on_old_stack, own_work
from ..syncing import held_adds, remote, this_thread, tracking, transport
from ..syncing.stamps import current_policy_state


def algorithm_add_policy(wrapped: Any, algo: Any, args: Any, kwargs: Any) -> Any:
    this_thread.driver_changed()
    receiving: dict[str, Any] = {}
    refusal: KeyError | None = None
    policy_id = ""
    with tracking.held():
        with own_work("checking the new policy id against every worker set"):
            arguments = bind(wrapped, args, kwargs)
            if arguments is not None and on_old_stack(_compat.uses_old_stack(algo)):
                policy_id = arguments["policy_id"]
                tracking.bind_algorithm(algo)
                receiving = _compat.groups_receiving_add(algo, arguments)
                refusal = _duplicate_id(receiving, policy_id)
        if refusal is not None:
            raise refusal
        try:
            return wrapped(*args, **kwargs)
        except BaseException:
            with own_work("undoing a failed add"):
                for group in receiving.values():  # e.g. added for training, failed for eval
                    held_adds.undo_add(group, policy_id)
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

    record: tracking.GroupRecord
    policy_id: str
    was_absent: bool
    #: The state the set's driver-side copy starts from (the evaluation set: the training
    #: driver's), else None.
    shared: dict[str, Any] | None = None
    policies_to_train: Callable[..., Any] | None = None  # a callable, applied afterwards
    #: Whether the remote half may be held (``syncing/held_adds``): the set has remote workers and a
    #: driver-side worker that will hold the policy to send from.
    holds_remote_half: bool = False


def group_add_policy(wrapped: Any, group: Any, args: Any, kwargs: Any) -> Any:
    this_thread.driver_changed()
    with tracking.held():
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
        holding: contextlib.AbstractContextManager[dict[str, Any]] = (
            held_adds.holding(group, plan.policy_id)
            if plan.holds_remote_half
            else contextlib.nullcontext({})
        )
        try:
            with holding as held:
                result = wrapped(*args, **call_kwargs)
        except BaseException:
            if plan.was_absent:  # a duplicate id fails before adding anything: leave it alone
                with own_work("undoing a failed add"):
                    held_adds.undo_add(group, plan.policy_id)
            raise
        with own_work("recording the added policy"):
            # A held add is sent, with the driver's state then, when the workers are next used.
            # Unheld, the remote copies got the state RLlib sent (or there are none); without
            # one, they start from their own init, and the next pre-use broadcast corrects them.
            sent_by_rllib = plan.shared is not None or not _compat.num_remote_workers(group)
            if "kwargs" not in held and sent_by_rllib:
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
    record = tracking.record_for(group)
    truth, own = record.truth(), _compat.local_worker(group)
    shared = None
    from_truth = truth is not None and truth is not own and policy_id in truth.policy_map
    if from_truth and arguments.get("policy") is None and arguments.get("policy_state") is None:
        # The evaluation set takes the training driver's policy: its driver-side copy too.
        shared = current_policy_state(truth, policy_id)[1]
        kwargs = dict(kwargs, policy_state=shared)
    plan = _GroupAdd(
        record,
        policy_id,
        was_absent=held_adds.lacks(group, policy_id),
        shared=shared,
        policies_to_train=to_train if callable(to_train) else None,
        holds_remote_half=bool(_compat.num_remote_workers(group))
        and (own is not None or from_truth),
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
        apply = functools.partial(remote.set_policies_to_train, policies_to_train=policies_to_train)
        replies = transport.foreach_remote(group, apply)
        for worker_id, outcome in replies:
            if outcome.get("error"):
                logger.warning(
                    "rllib_addpolicy_fix: remote worker %s did not take policies_to_train: %s",
                    worker_id,
                    outcome["error"],
                )
        transport.settle(group, replies, "the new policies_to_train")


def worker_add_policy(wrapped: Any, worker: Any, args: Any, kwargs: Any) -> Any:
    limit: contextlib.AbstractContextManager[None] = contextlib.nullcontext()
    with own_work("limiting on_create_policy to the new policy"):
        arguments = bind(wrapped, args, kwargs)
        if arguments is not None and arguments.get("policy_id") is not None:
            limit = remote.only_new_policy_callbacks(worker, arguments["policy_id"])
    with limit:
        return wrapped(*args, **kwargs)
