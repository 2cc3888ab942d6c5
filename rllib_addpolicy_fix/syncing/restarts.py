"""Remote workers Ray restarted behind RLlib's back, handed to RLlib's own restore.

With worker restarts on (RLlib's default from 2.40; 2.5's actors restart too), Ray restarts a
remote worker's process the moment it dies. When no call to it was in flight (most of a PPO
iteration is the driver learning), RLlib's actor manager never sees the failure: it keeps the
worker healthy and calls the new process, which was built from the config alone (policies added
at run time missing, the config's at their initial weights), and never restores it.

Ray counts every restart of an actor in its actor table. At the start of each training
iteration and whenever RLlib restores a set's workers (``restore_workers`` /
``restore_env_runners``), the shim compares each healthy worker's count with the one it last
saw the worker in sync at, and takes a worker whose count moved out of service; RLlib's own
restore, run right away, probes it and gives it the driver's whole state, as it does for a worker
it saw fail. That costs one read of the GCS per remote worker, whatever the league's size, and
no call to any worker.
"""

from __future__ import annotations

import weakref
from dataclasses import dataclass, field
from typing import Any

from .. import _compat
from .._guard import logger


@dataclass
class _SetState:
    #: Each remote worker's restart count when the shim last saw it in sync with the driver.
    in_sync_at: dict[int, int] = field(default_factory=dict)
    #: Restarted workers taken out of service, not yet restored: {worker id: its count then}.
    taken_out: dict[int, int] = field(default_factory=dict)


_sets: weakref.WeakKeyDictionary[Any, _SetState] = weakref.WeakKeyDictionary()


def in_sync_now(group: Any) -> None:
    """Every remote worker of ``group`` is in sync now (RLlib just built the set)."""
    _sets[group] = _SetState(in_sync_at=_compat.restart_counts(group))


def unnoticed(group: Any) -> list[int]:
    """Remote workers of ``group`` Ray restarted behind RLlib's back and not restored yet: those
    RLlib calls healthy with a count that moved, and those the shim took out of service."""
    state = _sets.setdefault(group, _SetState())
    return sorted({*_moved(group, state, _compat.restart_counts(group)), *state.taken_out})


def _moved(group: Any, state: _SetState, counts: dict[int, int]) -> list[int]:
    manager = _compat.worker_manager(group)
    if manager is None:
        return []
    healthy = set(manager.healthy_actor_ids())
    # A worker first met here counts as in sync at its present count: RLlib built it from the
    # config and the driver's state (a set the shim met only after RLlib built it).
    for worker_id, count in counts.items():
        state.in_sync_at.setdefault(worker_id, count)
    return [w for w, count in counts.items() if w in healthy and count != state.in_sync_at[w]]


def take_out_unnoticed(group: Any) -> list[int]:
    """Take every worker Ray restarted behind RLlib's back out of service, so that RLlib's
    restore brings it back with the driver's state; returns those taken out now."""
    state = _sets.setdefault(group, _SetState())
    counts = _compat.restart_counts(group)
    moved = _moved(group, state, counts)
    for worker_id in moved:
        _compat.take_out_of_service(group, worker_id)
        state.taken_out[worker_id] = counts[worker_id]
    return moved


def before_restore(group: Any) -> list[int]:
    """Right before RLlib's restore of ``group``: the restarted workers it did not notice are
    taken out of service; returns every worker out of service now, which the restore may bring
    back (for :func:`after_restore`)."""
    take_out_unnoticed(group)
    return _compat.unhealthy_worker_ids(group)


def after_restore(group: Any, out_before: list[int], source: Any) -> None:
    """After RLlib's restore: each worker of ``out_before`` that is healthy again was restored
    from ``source`` (the driver-side worker RLlib restores from) and is in sync at its present
    count. One warning names those the shim handed over and what they were given."""
    manager = _compat.worker_manager(group)
    if manager is None or not out_before:
        return
    state = _sets.setdefault(group, _SetState())
    healthy = set(manager.healthy_actor_ids())
    restored = [worker_id for worker_id in out_before if worker_id in healthy]
    if not restored:
        return
    counts = _compat.restart_counts(group)
    for worker_id in restored:
        state.in_sync_at[worker_id] = counts.get(worker_id, state.in_sync_at.get(worker_id, 0))
    handed_over = [w for w in restored if state.taken_out.pop(w, None) is not None]
    if not handed_over:
        return
    given = sorted(map(str, _compat.policy_ids(source))) if source is not None else []
    logger.warning(
        "rllib_addpolicy_fix: Ray restarted remote %s worker(s) %s behind RLlib's back (a new "
        "process holds only the config's policies, at their initial weights); RLlib restored "
        "them from the driver's state before they sampled again: %d policies %s.",
        _compat.group_role(group),
        handed_over,
        len(given),
        given,
    )
