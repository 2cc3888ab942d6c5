"""Targeted, blocking weight broadcasts from the driver to one worker set.

One ``ray.put`` per broadcast, carrying only the policies whose driver weights changed, and the
call returns when every healthy remote worker has applied them, so nothing samples with stale
weights, or when the timeout is up: a worker that did not answer by then goes to RLlib's fault
handling (``transport.settle``). The remote side is :func:`remote.set_policy_weights`, which
never raises.
"""

from __future__ import annotations

import functools
import time
from collections.abc import Collection
from dataclasses import dataclass, field
from typing import Any

from .. import _compat
from .._guard import logger, worker_errors_raised
from . import held_adds, remote, this_thread, tracking, transport, versions
from .stamps import current_weights, state_nbytes


@dataclass(frozen=True)
class SyncSummary:
    """What :func:`sync` sent: policy ids per worker set, and how long it took."""

    sent: dict[str, list[str]] = field(default_factory=dict)
    seconds: float = 0.0


def sync(algo: Any) -> SyncSummary:
    """Push every pending driver-side weight change to the remote workers of ``algo``'s training
    and evaluation sets now, blocking; what the shim otherwise does before the next sample.

    Bounded like every call of the shim: a worker that does not apply the weights in time is
    handed to RLlib's fault handling, and its error raised when the algorithm's config does not
    tolerate failed workers (:class:`transport.WorkerTimeoutError` for one that did not answer)."""
    started = time.perf_counter()
    sent = push_everything(algo)
    return SyncSummary(sent, time.perf_counter() - started)


def push_everything(algo: Any) -> dict[str, list[str]]:
    """Every pending change of ``algo``'s sets, now (:func:`sync`): the ids sent, by role. A
    worker's failure is raised as RLlib raises it (see ``transport.settle``)."""
    with tracking.held():
        sent = {}
        for role, record in tracking.bind_algorithm(algo).items():
            with worker_errors_raised():
                sent[role] = push_pending(record.group)
        return sent


def push_before_use(group: Any) -> list[str]:
    """What RLlib is about to reach ``group``'s remote workers with must find every changed
    policy there first: send the pending ones but those RLlib delivers itself."""
    with tracking.held():
        record = tracking.record_for(group)
        record.uses += 1
        held_adds.send_held_adds(group)
        if this_thread.found_current(record):
            return []
        sent = push_pending(group, skip=record.left_to_rllib())
        this_thread.mark_current(record)
        return sent


def check_at_use(group: Any) -> tuple[tracking.GroupRecord, dict[str, Any] | None]:
    """What RLlib's call to ``group``'s remote workers carries for the point-of-use check
    (``versions.check_for``), with the set's record."""
    with tracking.held():
        record = tracking.record_for(group)
        if not versions.CHECK_AT_USE:
            return record, None
        return record, versions.check_for(record, record.kept_in_sync)


def pending_before_use(record: tracking.GroupRecord) -> list[str]:
    """The policies :func:`push_before_use` would send now."""
    skip = set(record.left_to_rllib())
    return [policy_id for policy_id in record.pending() if policy_id not in skip]


def push_pending(group: Any, skip: Collection[str] = ()) -> list[str]:
    """Send every pending change of ``group`` (but those of ``skip``), held adds first; returns
    the ids sent."""
    with tracking.held():
        record = tracking.record_for(group)
        added = held_adds.send_held_adds(group)
        policy_ids = [policy_id for policy_id in record.pending() if policy_id not in skip]
        own = _compat.local_worker(group)
        if not _compat.num_remote_workers(group) and (own is None or own is record.truth()):
            # No copy to update (no remote workers, e.g. num_workers=0 or after stop()).
            record.mark_delivered(policy_ids)
            return []
        if policy_ids:
            broadcast(record, policy_ids)
        return added + policy_ids


def broadcast(record: tracking.GroupRecord, policy_ids: list[str]) -> None:
    """Send the driver's current weights of ``policy_ids`` to the record's worker set."""
    import ray

    group, truth = record.group, record.truth()
    own = _compat.local_worker(group)
    started = time.perf_counter()
    sources = record.sources()
    stamps, weights = {}, {}
    for policy_id in policy_ids:
        source = sources.get(policy_id, truth)
        stamps[policy_id], weights[policy_id] = current_weights(source, policy_id)
    nbytes = state_nbytes(weights)

    if own is not None and own is not truth:  # the evaluation set's driver-side worker
        remote.set_policy_weights(
            own,
            {
                policy_id: policy_weights
                for policy_id, policy_weights in weights.items()
                if sources.get(policy_id) is truth
            },
        )

    failed = False
    replies = transport.Replies()
    weights_ref = None
    planned = versions.plan(record.ledger, weights)
    if _compat.num_remote_workers(group):
        weights_ref = ray.put(weights)  # copies: later training cannot change what is sent
        apply = functools.partial(
            remote.set_policy_weights, weights_ref=weights_ref, versions=planned
        )
        replies = transport.foreach_remote(group, apply)
        for worker_id, outcome in replies:
            if outcome.get("error") or outcome.get("missing"):
                failed = True
                logger.warning(
                    "rllib_addpolicy_fix: remote worker %s did not apply %s: missing=%s error=%s",
                    worker_id,
                    policy_ids,
                    outcome.get("missing"),
                    outcome.get("error"),
                )
    if not failed:
        # Workers that died or hung are out of service now; RLlib restores each from the
        # driver's state before it samples again (``transport.settle``).
        record.note_delivered(stamps)
        if weights_ref is not None:
            versions.delivered_weights(record.ledger, stamps, planned, weights_ref)
    record.ledger.changed()  # delivered or not, what the next check expects is rebuilt
    sent_bytes = nbytes * len(replies)
    record.record_broadcast(policy_ids, sent_bytes, time.perf_counter() - started)
    transport.settle(group, replies, f"the weights of {policy_ids}")
