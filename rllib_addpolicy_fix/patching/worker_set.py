"""The wrappers on RLlib's worker set (``WorkerSet`` / ``EnvRunnerGroup``, but ``add_policy``,
see ``adding``) and on the driver's policy cache, which keep remote workers current between adds.

* ``<worker set>.foreach_*`` (every way RLlib reaches a set's remote workers): before the call,
  the held remote halves of adds (``syncing/held_adds``), then one blocking, bounded broadcast
  of the policies whose driver weights changed (``set_weights``/``set_state`` after an add,
  ``algo.set_weights``, snapshots refreshed in callbacks). Policies RLlib keeps current itself
  are left to it.
* ``<worker set>.sync_weights``: records what RLlib's own syncs delivered, so the shim never
  re-sends it; RLlib's sync of every policy to an evaluation set (each ``evaluate()``) carries
  only the trained and the changed ones.
* ``PolicyMap._stash_least_used_policy`` (the driver's map only): when the LRU cache evicts a
  policy the workers already hold, its record follows it into the stash; a changed one stays
  pending and is broadcast from the stash.
"""

from __future__ import annotations

from typing import Any

from .. import _compat
from .._compat import bind
from .._guard import own_work
from ..syncing import broadcast, held_adds, this_thread, tracking
from .actor_manager import CHECK_AT_USE

#: What the shim sends before RLlib uses a set's remote workers (held adds, then changed weights).
PRE_USE_WORK = "the broadcast before the remote workers are used"


def group_sync_weights(wrapped: Any, group: Any, args: Any, kwargs: Any) -> Any:
    if not this_thread.busy_here():
        with own_work(PRE_USE_WORK):  # one warning, whichever call met the failure first
            held_adds.send_held_adds(group)  # RLlib's sync may name the new policies
    with tracking.held():  # RLlib's own sync reaches the workers: push nothing before it
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
                record = tracking.record_for(group)
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
    record = tracking.existing_record(group)
    source = _compat.sync_weights_source(arguments)
    own = _compat.local_worker(group)
    if record is None or source is None or source is own or source is not record.truth():
        return None  # a set the shim has not followed yet (its first evaluate) is synced whole
    changed = set(record.left_to_rllib()) | set(record.pending())
    from_source = record.sources()  # not those only the evaluation set has: the shim sends them
    return sorted(policy_id for policy_id in changed if from_source.get(policy_id) is source)


def group_remote_call(wrapped: Any, group: Any, args: Any, kwargs: Any) -> Any:
    """Before RLlib reaches a set's remote workers for anything (sampling, evaluation, weight
    pushes, restores), held adds and the policies whose driver weights changed go out,
    blocking. RLlib's own remote half of an add is held here instead of run (``syncing/held_adds``).

    This is the per-iteration broadcast. It lives on the worker set, not on ``Algorithm.step``,
    because Ray copies an Algorithm's methods into the actor class of a Tune trial or
    ``ray.remote(PPO)``, where a wrapper on ``Algorithm`` may never run; the worker set is
    imported and used in whichever process hosts the Algorithm.
    """
    if held_adds.hold(group, _compat.called_function(args, kwargs)):
        return []  # the remote half of an add: sent when the workers are next used
    if this_thread.busy_here():  # the shim's own call, or inside a sync or an add
        return wrapped(*args, **kwargs)
    old_stack = False
    with own_work(PRE_USE_WORK):
        old_stack = _compat.group_uses_old_stack(group)
        if old_stack:
            broadcast.push_before_use(group)
    use: tuple[tracking.GroupRecord, dict[str, Any] | None] | None = None
    if old_stack:
        with own_work(CHECK_AT_USE):
            use = broadcast.check_at_use(group)
    if use is None:
        return wrapped(*args, **kwargs)
    with this_thread.using(*use):  # the set's actor manager carries the check (``actor_manager``)
        return wrapped(*args, **kwargs)


def policy_map_stash(wrapped: Any, policy_map: Any, args: Any, kwargs: Any) -> Any:
    this_thread.driver_changed()
    records: list[tracking.GroupRecord] = []
    with own_work("following a policy into the policy cache's stash"):
        # Empty on anything but a driver-side truth map (e.g. on a remote worker).
        records = tracking.records_for_truth_map(policy_map)
    if not records:
        return wrapped(*args, **kwargs)
    with tracking.held():
        policy_id: str | None = None
        clean: list[tracking.GroupRecord] = []
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
