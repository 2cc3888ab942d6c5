"""The remote half of an add, held until the remote workers are next used: one round trip per
snapshot.

A league snapshot is ``add_policy`` and then ``set_weights`` on the driver. RLlib builds the new
policy on every remote worker inside ``add_policy``, before the script copies the weights, so
the copy needed a second round trip (a broadcast) to reach them. Instead the shim lets RLlib
build the policy on the driver only, keeps RLlib's own arguments for the remote half, and sends
it the moment anything next reaches the set's remote workers (sampling, ``evaluate()``, any
``foreach_*``, ``sync``, ``verify``): every held add in one call, with the driver's state at that
moment, put into the object store once. The remote workers build each policy once, already at
the weights the driver ends up with.

A policy that fails to build only on a remote worker is undone everywhere (driver and every
worker of every set, nothing half-added) and the call that was about to use the workers raises
:class:`RemoteAddError`, naming it. A build error on the driver is raised by ``add_policy``
itself, as RLlib raises it.
"""

from __future__ import annotations

import contextlib
import functools
import threading
import time
from collections.abc import Hashable, Iterator
from typing import Any

from .. import _compat
from .._guard import WorkerFault, logger
from . import remote, tracking, transport, versions
from .stamps import current_policy_state, state_nbytes


class RemoteAddError(RuntimeError):
    """A policy added on the driver failed to build on a remote worker. The add was undone on
    the driver and every worker; raised by the next call that used the workers."""


_this_thread = threading.local()


@contextlib.contextmanager
def holding(group: Any, policy_id: str) -> Iterator[dict[str, Any]]:
    """While RLlib's ``add_policy`` of ``policy_id`` runs on ``group``, its remote half is
    held, not run (:func:`hold`); the yielded dict then has ``"kwargs"``, RLlib's arguments,
    which :func:`send_held_adds` sends."""
    held: dict[str, Any] = {}
    previous = getattr(_this_thread, "holding", None)
    _this_thread.holding = (group, policy_id, held)
    try:
        yield held
    finally:
        _this_thread.holding = previous


def hold(group: Any, func: Any) -> bool:
    """For the worker set's ``foreach_*`` wrapper: True when ``func`` is the remote half of the
    add :func:`holding` is about, which is then kept instead of run."""
    holding_now = getattr(_this_thread, "holding", None)
    if holding_now is None or holding_now[0] is not group:
        return False
    kwargs = _compat.remote_add_kwargs(func)
    if kwargs is None or kwargs.get("policy_id") != holding_now[1]:
        return False
    kwargs.pop("policy_state", None)  # sent when the add is, as the driver holds it then
    # Recorded here, where it stops being RLlib's to send, so it cannot be lost in between.
    tracking.record_for(group).held_adds[holding_now[1]] = kwargs
    holding_now[2]["kwargs"] = kwargs
    return True


def send_held_adds(group: Any) -> list[str]:
    """Send ``group``'s held adds now, blocking and bounded; returns the ids sent. Raises
    :class:`WorkerFault` carrying a :class:`RemoteAddError` (or RLlib's worker error
    when the algorithm does not tolerate failed workers)."""
    record = tracking.existing_record(group)
    if record is None or not record.held_adds:
        return []
    import ray

    with tracking.held():
        # Held until the call has reached the workers: should the shim's own work fail before
        # (it is logged), the next use sends them again; nothing is lost.
        held = dict(record.held_adds)
        started = time.perf_counter()
        sources, own = record.sources(), _compat.local_worker(group)
        adds: list[tuple[str, dict[str, Any]]] = []
        stamps: dict[str, Hashable] = {}
        states: dict[str, dict[str, Any]] = {}
        for policy_id, kwargs in held.items():
            source = sources.get(policy_id)
            if source is None:  # removed (or restored away) on the driver meanwhile
                continue
            stamps[policy_id], states[policy_id] = current_policy_state(source, policy_id)
            adds.append((policy_id, kwargs))
            if own is not None and own is not source:  # the evaluation set's own copy
                remote.set_policy_weights(own, {policy_id: states[policy_id]["weights"]})
        replies = transport.Replies()
        payload_ref = None
        planned: versions.Planned = {}
        if adds and _compat.num_remote_workers(group):
            # One put for every worker, kept as where a worker that lacks these adds later
            # (a new process) catches up from (``versions``).
            payload_ref = ray.put({"kwargs": dict(adds), "states": states})
            planned = versions.plan(
                record.ledger, {pid: state["weights"] for pid, state in states.items()}
            )
            send = functools.partial(
                remote.add_policies,
                policy_ids=list(dict(adds)),
                payload_ref=payload_ref,
                versions=planned,
            )
            replies = transport.foreach_remote(group, send)
        for policy_id in held:
            record.held_adds.pop(policy_id, None)
        if not adds:
            return []
        failures: dict[str, list[str]] = {}
        for worker_id, outcome in replies:
            for policy_id, error in (outcome.get("errors") or {}).items():
                failures.setdefault(policy_id, []).append(f"remote worker {worker_id}: {error}")
        sent = [policy_id for policy_id, _ in adds if policy_id not in failures]
        record.note_delivered({policy_id: stamps[policy_id] for policy_id in sent})
        if payload_ref is not None:
            delivered = {policy_id: stamps[policy_id] for policy_id in sent}
            versions.delivered_adds(record.ledger, delivered, planned, payload_ref)
        record.record_broadcast(
            sent, state_nbytes(states) * len(replies), time.perf_counter() - started
        )
        if failures:
            _undo_everywhere(record, sorted(failures))
            raise WorkerFault(
                RemoteAddError(
                    "; ".join(
                        f"add_policy({policy_id!r}) failed on the remote workers and was undone "
                        f"on the driver and every worker ({'; '.join(errors)})"
                        for policy_id, errors in sorted(failures.items())
                    )
                )
            )
        transport.settle(group, replies, f"the added policies {sent}")
        return sent


def _undo_everywhere(failed_in: tracking.GroupRecord, policy_ids: list[str]) -> None:
    """Remove ``policy_ids`` from every set that shares ``failed_in``'s driver (an Algorithm's
    training and evaluation sets), driver-side and remote."""
    truth = failed_in.truth()
    for record in tracking.all_records():
        if record is failed_in or (truth is not None and record.truth() is truth):
            for policy_id in policy_ids:
                record.held_adds.pop(policy_id, None)
                if record.group is not None:
                    undo_add(record.group, policy_id)


def lacks(group: Any, policy_id: str) -> bool:
    """Whether ``group``'s driver-side worker lacks ``policy_id`` now."""
    return policy_id not in _compat.policy_ids(_compat.local_worker(group))


def undo_add(group: Any, policy_id: str) -> None:
    """Undo a failed add so the driver and its workers agree on which policies exist: remove
    ``policy_id`` from the set's driver-side worker and every remote worker holding it.

    RLlib adds to the driver's worker first and builds the policy before applying
    ``policy_state``, so a bad state leaves the policy on the driver only; a failure on the
    evaluation set leaves it on the training set only. Callers undo only ids that were absent
    before the call. Never raises: it runs while another error is on its way to the caller."""
    try:
        own = _compat.local_worker(group)
        if own is not None and policy_id in _compat.policy_ids(own):
            own.remove_policy(policy_id=policy_id)
        if _compat.num_remote_workers(group):
            remove = functools.partial(remote.remove_policy, policy_id=policy_id)
            transport.foreach_remote(group, remove)
        tracking.record_for(group).forget(policy_id)
    except Exception:  # noqa: BLE001
        logger.exception("rllib_addpolicy_fix: could not undo the failed add of %r", policy_id)
