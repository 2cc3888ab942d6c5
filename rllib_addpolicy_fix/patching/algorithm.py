"""The wrappers on RLlib's ``Algorithm`` (but ``add_policy``, see ``adding``): the shim's figures in
each result, and workers Ray restarted behind RLlib's back handed to RLlib's restore.

* ``Algorithm.step``: the shim's figures in the result dict (:data:`RESULT_KEY`), and a warning
  if an iteration reached the workers without the pre-use broadcast.
* ``Algorithm.setup``/``__setstate__`` and the restores: nothing pushed while RLlib builds or
  restores workers; before RLlib's restore, and before each iteration and evaluation samples,
  workers Ray restarted behind its back are handed to it (``syncing/restarts``).
* ``Algorithm.remove_policy``: forgets the removed policy.

Installed as plain functions pickled by reference, so they run in a Tune trial or a
``ray.remote(PPO)`` actor too (see ``install``).
"""

from __future__ import annotations

import weakref
from typing import Any

from .. import _compat
from .._compat import bind
from .._guard import logger, on_old_stack, own_work, warn_once
from ..syncing import broadcast, restarts, this_thread, tracking
from ..syncing.tracking import RESULT_KEY

#: What the shim does around RLlib's builds and restores of a set's workers.
FINDING_RESTARTS = "finding remote workers Ray restarted behind RLlib's back"


def algorithm_sets_up_workers(wrapped: Any, algo: Any, args: Any, kwargs: Any) -> Any:
    """RLlib builds the workers, or restores their state from a checkpoint: nothing is pushed
    meanwhile. What the driver holds afterwards is compared with the workers once, by digest,
    at their first use; each worker is in sync now, at its present restart count
    (``syncing/restarts``)."""
    with this_thread.quiet():
        result = wrapped(*args, **kwargs)
    with own_work(FINDING_RESTARTS):
        if _compat.uses_old_stack(algo):
            for group in _compat.groups(algo).values():
                restarts.in_sync_now(group)
    return result


def algorithm_restores_workers(wrapped: Any, algo: Any, args: Any, kwargs: Any) -> Any:
    """RLlib brings the workers of a set it saw fail back, from the driver's state (before each
    training iteration and each evaluation). Workers Ray restarted without RLlib seeing them
    fail are handed to that restore first (``syncing/restarts``); nothing is pushed meanwhile."""
    group: Any = None
    out_before: list[int] | None = None
    with own_work(FINDING_RESTARTS):
        arguments = bind(wrapped, args, kwargs)
        group = next(iter(arguments.values()), None) if arguments else None
        if group is not None and _compat.group_uses_old_stack(group):
            out_before = restarts.before_restore(group)
    with this_thread.quiet():
        result = wrapped(*args, **kwargs)
    if out_before:
        with own_work(FINDING_RESTARTS):
            source = _compat.local_worker(group) or _compat.local_worker(
                _compat.training_group(algo)
            )
            restarts.after_restore(group, out_before, source)
    return result


def _restore_unnoticed_restarts(algo: Any, groups: list[Any]) -> None:
    """Before an iteration or an evaluation samples: workers Ray restarted behind RLlib's back
    are restored now, through RLlib's own restore (some releases restore only after sampling)."""
    for group in groups:
        if group is not None and restarts.take_out_unnoticed(group):
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
    watched: tracking.GroupRecord | None = None
    uses_before, pending_before = 0, frozenset[str]()
    with own_work(FINDING_RESTARTS):
        if _compat.uses_old_stack(algo):
            _restore_unnoticed_restarts(algo, list(_compat.groups(algo).values()))
    with own_work("watching this training iteration"):
        if on_old_stack(_compat.uses_old_stack(algo)):
            with tracking.held():
                records = tracking.bind_algorithm(algo)
                _announce(algo, records)
                watched = records.get("training")
                if watched is not None and _compat.num_remote_workers(watched.group):
                    uses_before = watched.uses
                    pending_before = frozenset(broadcast.pending_before_use(watched))
    with this_thread.training_iteration():
        if watched is not None and not pending_before:
            this_thread.mark_current(watched)  # just checked: the first use need not again
        result = wrapped(*args, **kwargs)
    if watched is not None:
        with own_work("reporting the shim's figures in the result"):
            with tracking.held():
                if pending_before and watched.uses == uses_before:
                    still = pending_before & set(broadcast.pending_before_use(watched))
                    if still:
                        _note_bypass(watched, sorted(still))
                if isinstance(result, dict):
                    result[RESULT_KEY] = tracking.take_result(algo)
    return result


_announced: weakref.WeakSet[Any] = weakref.WeakSet()


def _announce(algo: Any, records: dict[str, tracking.GroupRecord]) -> None:
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


def _note_bypass(record: tracking.GroupRecord, policy_ids: list[str]) -> None:
    record.bypassed = (
        f"a training iteration used the remote workers without the shim's pre-use broadcast "
        f"(the worker set {type(record.group).__qualname__} bypasses RLlib's foreach calls), "
        f"so {policy_ids} may be stale there; call rllib_addpolicy_fix.sync(algo) after "
        "changing weights on the driver"
    )
    warn_once("bypass", "rllib_addpolicy_fix: %s.", record.bypassed)


def algorithm_remove_policy(wrapped: Any, algo: Any, args: Any, kwargs: Any) -> Any:
    this_thread.driver_changed()
    result = wrapped(*args, **kwargs)
    with own_work("forgetting the removed policy"):
        arguments = bind(wrapped, args, kwargs)
        if arguments is not None and _compat.uses_old_stack(algo):
            with tracking.held():
                for record in tracking.bind_algorithm(algo).values():
                    record.forget(arguments["policy_id"])
    return result
