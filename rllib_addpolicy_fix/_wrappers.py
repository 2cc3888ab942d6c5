"""The wrappers that keep remote workers current between adds.

* ``<worker set>.foreach_*`` (every way RLlib reaches a set's remote workers): before the call,
  the held remote halves of adds (``_deferred``), then one blocking, bounded broadcast of the
  policies whose driver weights changed
  (``set_weights``/``set_state`` after an add, ``algo.set_weights``, snapshots refreshed in
  callbacks). Policies RLlib keeps current itself are left to it.
* ``<worker set>.sync_weights``: records what RLlib's own syncs delivered, so the shim never
  re-sends it; RLlib's sync of every policy to an evaluation set (each ``evaluate()``) carries
  only the trained and the changed ones.
* ``Algorithm.step``: the shim's figures in the result dict, and a warning if an iteration
  reached the workers without the broadcast. ``Algorithm.setup``/restores: nothing pushed while
  RLlib builds or restores workers; before RLlib's restore, workers Ray restarted behind its
  back are handed to it (``_restarts``). ``Algorithm.remove_policy``: forgets the removed
  policy.
* ``PolicyMap._stash_least_used_policy`` (the driver's map only): when the LRU cache evicts a
  policy the workers already hold, its record follows it into the stash; a changed one stays
  pending and is broadcast from the stash.
"""

from __future__ import annotations

import logging
import weakref
from typing import Any

from . import _broadcast, _busy, _compat, _deferred, _iteration, _restarts, _tracking
from ._guard import bind, on_old_stack, own_work, warn_once

logger = logging.getLogger("rllib_addpolicy_fix")

#: Key of the shim's figures in each ``train()`` result.
RESULT_KEY = "rllib_addpolicy_fix"

#: What the shim sends before RLlib uses a set's remote workers (held adds, then changed weights).
PRE_USE_WORK = "the broadcast before the remote workers are used"


def group_sync_weights(wrapped: Any, group: Any, args: Any, kwargs: Any) -> Any:
    if not _busy.busy_here():
        with own_work(PRE_USE_WORK):  # one warning, whichever call met the failure first
            _deferred.send_held_adds(group)  # RLlib's sync may name the new policies
    with _tracking.held():  # RLlib's own sync reaches the workers: push nothing before it
        call_args, call_kwargs = args, kwargs
        arguments: dict[str, Any] | None = None
        synced: list[str] | None = None
        with own_work("narrowing RLlib's evaluation sync to the policies that changed"):
            arguments = bind(wrapped, args, kwargs)
            synced = _evaluation_sync(group, arguments)
            if synced is not None:
                call_args, call_kwargs = _compat.rebind(wrapped, args, kwargs, policies=synced)
        result = wrapped(*call_args, **call_kwargs)
        with own_work("recording what RLlib's sync_weights delivered"):
            if arguments is not None and _compat.group_uses_old_stack(group):
                record = _tracking.record_for(group)
                own = _compat.local_worker(group)
                source = _compat.sync_weights_source(arguments) or own
                if source is not own and hasattr(source, "policy_map"):
                    # The evaluation set, synced from the training set's driver worker at
                    # each evaluate(): that worker holds the truth for this set too.
                    record.set_truth(source)
                if source is record.truth() and arguments.get("to_worker_indices") is None:
                    record.mark_delivered(arguments.get("policies") if synced is None else synced)
    return result


def _evaluation_sync(group: Any, arguments: dict[str, Any] | None) -> list[str] | None:
    """For RLlib's sync of every policy from the training driver to an evaluation set (each
    ``evaluate()``): the policies its workers may lack at driver weights, the trained ones and
    those the shim saw change, else None (the call goes ahead unchanged). RLlib reads and
    sends every policy there, which loads each one its LRU cache had stashed, on the driver and
    on every evaluation worker (ray#31432); the rest already hold the driver's weights."""
    if arguments is None or arguments.get("policies") is not None:
        return None
    if arguments.get("to_worker_indices") is not None or not _compat.group_uses_old_stack(group):
        return None
    record = _tracking.existing_record(group)
    source = _compat.sync_weights_source(arguments)
    own = _compat.local_worker(group)
    if record is None or source is None or source is own or source is not record.truth():
        return None  # a set the shim has not followed yet (its first evaluate) is synced whole
    changed = set(_broadcast.left_to_rllib(record)) | set(record.pending())
    from_source = record.sources()  # not those only the evaluation set has: the shim sends them
    return sorted(policy_id for policy_id in changed if from_source.get(policy_id) is source)


def group_remote_call(wrapped: Any, group: Any, args: Any, kwargs: Any) -> Any:
    """Before RLlib reaches a set's remote workers for anything (sampling, evaluation, weight
    pushes, restores), held adds and the policies whose driver weights changed go out,
    blocking. RLlib's own remote half of an add is held here instead of run (``_deferred``).

    This is the per-iteration broadcast. It lives on the worker set, not on ``Algorithm.step``,
    because Ray copies an Algorithm's methods into the actor class of a Tune trial or
    ``ray.remote(PPO)``, where a wrapper on ``Algorithm`` may never run; the worker set is
    imported and used in whichever process hosts the Algorithm.
    """
    if _deferred.hold(group, _compat.called_function(args, kwargs)):
        return []  # the remote half of an add: sent when the workers are next used
    if not _busy.busy_here():  # not the shim's own call, nor inside a sync or an add
        with own_work(PRE_USE_WORK):
            if _compat.group_uses_old_stack(group):
                _broadcast.push_before_use(group)
    return wrapped(*args, **kwargs)


#: What the shim does around RLlib's builds and restores of a set's workers.
FINDING_RESTARTS = "finding remote workers Ray restarted behind RLlib's back"


def algorithm_sets_up_workers(wrapped: Any, algo: Any, args: Any, kwargs: Any) -> Any:
    """RLlib builds the workers, or restores their state from a checkpoint: nothing is pushed
    meanwhile. What the driver holds afterwards is compared with the workers once, by digest,
    at their first use; each worker is in sync now, at its present restart count
    (``_restarts``)."""
    with _busy.quiet():
        result = wrapped(*args, **kwargs)
    with own_work(FINDING_RESTARTS):
        if _compat.uses_old_stack(algo):
            for group in _compat.groups(algo).values():
                _restarts.in_sync_now(group)
    return result


def algorithm_restores_workers(wrapped: Any, algo: Any, args: Any, kwargs: Any) -> Any:
    """RLlib brings the workers of a set it saw fail back, from the driver's state (before each
    training iteration and each evaluation). Workers Ray restarted without RLlib seeing them
    fail are handed to that restore first (``_restarts``); nothing is pushed meanwhile."""
    group: Any = None
    out_before: list[int] | None = None
    with own_work(FINDING_RESTARTS):
        arguments = bind(wrapped, args, kwargs)
        group = next(iter(arguments.values()), None) if arguments else None
        if group is not None and _compat.group_uses_old_stack(group):
            out_before = _restarts.before_restore(group)
    with _busy.quiet():
        result = wrapped(*args, **kwargs)
    if out_before:
        with own_work(FINDING_RESTARTS):
            source = _compat.local_worker(group) or _compat.local_worker(
                _compat.training_group(algo)
            )
            _restarts.after_restore(group, out_before, source)
    return result


def _restore_unnoticed_restarts(algo: Any, groups: list[Any]) -> None:
    """Before an iteration or an evaluation samples: workers Ray restarted behind RLlib's back
    are restored now, through RLlib's own restore (some releases restore only after sampling)."""
    for group in groups:
        if group is not None and _restarts.take_out_unnoticed(group):
            _compat.restore_workers(algo, group)


def algorithm_evaluate(wrapped: Any, algo: Any, args: Any, kwargs: Any) -> Any:
    """An evaluation worker Ray restarted behind RLlib's back is restored before it evaluates."""
    with own_work(FINDING_RESTARTS):
        if _compat.uses_old_stack(algo):
            _restore_unnoticed_restarts(algo, [_compat.evaluation_group(algo)])
    return wrapped(*args, **kwargs)


def algorithm_step(wrapped: Any, algo: Any, args: Any, kwargs: Any) -> Any:
    """The shim's figures in the result, and a warning if the iteration reached the workers
    without the pre-use broadcast (e.g. a worker set whose class bypasses the wrapped calls)."""
    watched: _tracking.GroupRecord | None = None
    uses_before, pending_before = 0, frozenset[str]()
    with own_work(FINDING_RESTARTS):
        if _compat.uses_old_stack(algo):
            _restore_unnoticed_restarts(algo, list(_compat.groups(algo).values()))
    with own_work("watching this training iteration"):
        if on_old_stack(_compat.uses_old_stack(algo)):
            with _tracking.held():
                records = _tracking.bind_algorithm(algo)
                _announce(algo, records)
                watched = records.get("training")
                if watched is not None and _compat.num_remote_workers(watched.group):
                    uses_before = watched.uses
                    pending_before = frozenset(_broadcast.pending_before_use(watched))
    with _iteration.training_iteration():
        if watched is not None and not pending_before:
            _iteration.mark_current(watched)  # just checked: the first use need not again
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


_announced: weakref.WeakSet[Any] = weakref.WeakSet()


def _announce(algo: Any, records: dict[str, _tracking.GroupRecord]) -> None:
    """One INFO line when the fix first takes effect for an Algorithm, so a user sees it works
    without running ``doctor``; nothing at INFO per iteration."""
    if algo in _announced:
        return
    _announced.add(algo)
    counts = {role: _compat.num_remote_workers(record.group) for role, record in records.items()}
    logger.info(
        "rllib_addpolicy_fix: in effect for %s (Ray %s): keeping %d remote rollout worker(s) "
        "and %d evaluation worker(s) in sync with the driver's policies.",
        type(algo).__name__,
        _compat.installed_ray_version(),
        counts.get("training", 0),
        counts.get("evaluation", 0),
    )


def _note_bypass(record: _tracking.GroupRecord, policy_ids: list[str]) -> None:
    record.bypassed = (
        f"a training iteration used the remote workers without the shim's pre-use broadcast "
        f"(the worker set {type(record.group).__qualname__} bypasses RLlib's foreach calls), "
        f"so {policy_ids} may be stale there; call rllib_addpolicy_fix.sync(algo) after "
        "changing weights on the driver"
    )
    warn_once("bypass", "rllib_addpolicy_fix: %s.", record.bypassed)


def algorithm_remove_policy(wrapped: Any, algo: Any, args: Any, kwargs: Any) -> Any:
    _iteration.driver_changed()
    result = wrapped(*args, **kwargs)
    with own_work("forgetting the removed policy"):
        arguments = bind(wrapped, args, kwargs)
        if arguments is not None and _compat.uses_old_stack(algo):
            with _tracking.held():
                for record in _tracking.bind_algorithm(algo).values():
                    record.forget(arguments["policy_id"])
    return result


def policy_map_stash(wrapped: Any, policy_map: Any, args: Any, kwargs: Any) -> Any:
    _iteration.driver_changed()
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
