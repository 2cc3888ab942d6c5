"""What the remote workers of each worker set were last sent, and whether the driver moved on.

For every worker set the shim keeps ``delivered[policy_id] = stamp``: the stamp the driver's
policy had when its weights last reached that set's remote workers (by RLlib's own
``sync_weights``, by the state a held remote ``add_policy`` carried, or by a shim broadcast).
A policy is *pending* when its current stamp differs. Stamps are cheap for torch policies (tensor
version counters, no weight read) and a content digest for everything else.
"""

from __future__ import annotations

import contextlib
import functools
import threading
import weakref
from collections.abc import Hashable, Iterator
from dataclasses import dataclass, field
from typing import Any

from .. import _compat
from . import remote, this_thread, transport, versions
from .remote import weights_digest
from .stamps import current_weights, stash_stamp, weights_stamp

#: Key of the shim's figures in each ``train()`` result (see :func:`take_result`).
RESULT_KEY = "rllib_addpolicy_fix"

#: One lock for all shim bookkeeping and broadcasts: adds from callbacks and user threads must
#: not interleave a half-recorded add with a broadcast. Re-entrant: add_policy nests calls.
LOCK = threading.RLock()


@contextlib.contextmanager
def held() -> Iterator[None]:
    """:data:`LOCK`, with this thread marked busy (:func:`this_thread.quiet`) for the shim's own
    work and the RLlib calls the shim wraps (an add, a weight sync)."""
    with LOCK, this_thread.quiet():
        yield


@dataclass
class Stats:
    """Broadcast figures; reported per ``train()`` result and kept for the process lifetime."""

    broadcasts: int = 0
    policies_broadcast: int = 0
    bytes_broadcast: int = 0
    broadcast_seconds: float = 0.0
    policy_ids: list[str] = field(default_factory=list)

    def add(self, policy_ids: list[str], nbytes: int, seconds: float) -> None:
        self.merge(Stats(1, len(policy_ids), nbytes, seconds, list(policy_ids)))

    def merge(self, other: Stats) -> None:
        self.broadcasts += other.broadcasts
        self.policies_broadcast += other.policies_broadcast
        self.bytes_broadcast += other.bytes_broadcast
        self.broadcast_seconds += other.broadcast_seconds
        self.policy_ids.extend(other.policy_ids)

    def as_result(self) -> dict[str, float]:
        """Numbers only, so every Tune logger (CSV, JSON, TensorBoard) records each figure."""
        return {
            "broadcasts": self.broadcasts,
            "policies_broadcast": self.policies_broadcast,
            "bytes_broadcast": self.bytes_broadcast,
            "broadcast_seconds": self.broadcast_seconds,
        }


class GroupRecord:
    """Delivery bookkeeping for one worker set."""

    def __init__(self, group: Any) -> None:
        self._group = weakref.ref(group)
        self._truth: weakref.ReferenceType[Any] | None = None
        self.delivered: dict[str, Hashable] = {}
        #: Adds whose remote half is held until the workers are next used (``held_adds``):
        #: policy id -> RLlib's ``RolloutWorker.add_policy`` kwargs, in the order added.
        self.held_adds: dict[str, dict[str, Any]] = {}
        self.baselined = False
        #: How often RLlib reached this set's remote workers through the wrapped calls.
        self.uses = 0
        #: Why the pre-use broadcast was bypassed, once seen (``verify()`` reports it).
        self.bypassed: str | None = None
        self.since_result = Stats()
        self.lifetime = Stats()
        #: Versions of the policies this set keeps in sync, and the audit (``versions``).
        self.ledger = versions.Ledger()

    @property
    def group(self) -> Any:
        return self._group()

    def truth(self) -> Any:
        """The driver-side worker whose weights this set's remote workers must hold: the
        training set's local worker (also for the evaluation set), else the set's own."""
        truth = self._truth() if self._truth is not None else None
        return truth if truth is not None else _compat.local_worker(self.group)

    def set_truth(self, worker: Any) -> None:
        self._truth = weakref.ref(worker) if worker is not None else None

    def sources(self) -> dict[str, Any]:
        """Every policy this set's remote workers hold -> the driver-side worker whose copy
        they must match (see :func:`sources`)."""
        return sources(self.truth(), _compat.local_worker(self.group))

    def mark_delivered(self, policy_ids: list[str] | None = None) -> None:
        """The remote workers now hold the driver's current weights for ``policy_ids`` (when
        None: every policy this set takes from the training driver, what RLlib's own full
        sync sends)."""
        sources = self.sources()
        if policy_ids is None:
            truth = self.truth()
            policy_ids = [pid for pid, source in sources.items() if source is truth]
        for policy_id in policy_ids:
            if policy_id in self.held_adds:
                continue  # not on the remote workers yet: the held add sends its state
            source = sources.get(policy_id)
            if source is None:
                continue
            policy = _compat.loaded_policy(source, policy_id)
            stash_ref = _compat.stashed_state_ref(source, policy_id)
            if policy is not None:
                self.delivered[policy_id] = weights_stamp(policy)
            elif stash_ref is not None:
                self.delivered[policy_id] = stash_stamp(stash_ref)
        self.ledger.changed()

    def note_delivered(self, stamps: dict[str, Hashable]) -> None:
        """The remote workers hold the driver's weights of these stamps now."""
        self.delivered.update(stamps)
        self.ledger.changed()

    def pending(self) -> list[str]:
        """Policies of this set whose driver weights differ from what its workers were sent.

        A policy evicted from the driver's LRU cache is judged by its stash (see
        :meth:`before_stash`), never loaded here: loading would evict another one.
        """
        sources = {
            policy_id: source
            for policy_id, source in self.sources().items()
            if policy_id not in self.held_adds  # the held add sends the state it has then
        }
        changed = [
            policy_id for policy_id, source in sources.items() if self._changed(source, policy_id)
        ]
        if not self.baselined:
            self.baselined = True
            if changed:
                self._baseline(sources, changed)
                changed = [
                    policy_id
                    for policy_id in changed
                    if self._changed(sources[policy_id], policy_id)
                ]
        return sorted(changed)

    def _baseline(self, sources: dict[str, Any], policy_ids: list[str]) -> None:
        """The first time the shim checks a set, it cannot know what the workers got before it
        was watching (a league restored from a checkpoint by ``set_state`` calls, policies
        built with the algorithm or added before the shim was installed). Policies that look
        changed count as delivered where every remote worker already holds the driver's
        weights, by exact digest: one round trip, once, instead of re-sending the league."""
        group = self.group
        if not policy_ids or not _compat.num_remote_workers(group):
            return
        expected: dict[str, tuple[Hashable, str]] = {}
        for policy_id in policy_ids:
            stamp, weights = current_weights(sources[policy_id], policy_id)
            expected[policy_id] = (stamp, weights_digest(weights))
        digests = functools.partial(remote.policy_digests, policy_ids=list(expected))
        replies = transport.foreach_remote(group, digests)
        held = [found for _, found in replies]
        for policy_id, (stamp, digest) in expected.items():
            if (
                held
                and not replies.unreached
                and all(found.get(policy_id) == digest for found in held)
            ):
                self.delivered[policy_id] = stamp
                self.ledger.changed()

    def _changed(self, truth: Any, policy_id: str) -> bool:
        delivered = self.delivered.get(policy_id)
        policy = _compat.loaded_policy(truth, policy_id)
        stash_ref = _compat.stashed_state_ref(truth, policy_id)
        if policy is None:
            return stash_ref is not None and delivered != stash_stamp(stash_ref)
        stamp = weights_stamp(policy)
        if delivered == stamp:
            return False
        if stash_ref is not None and delivered == stash_stamp(stash_ref):
            # Reloaded from a stash the workers hold: unchanged if the content still matches.
            import ray

            stashed = ray.get(stash_ref)["weights"]
            if weights_digest(policy.get_weights()) == weights_digest(stashed):
                self.delivered[policy_id] = stamp
                self.ledger.changed()
                return False
        return True

    def before_stash(self, policy_id: str, policy: Any) -> bool:
        """Called before the driver's policy map evicts ``policy``: True when the workers hold
        its current weights (its record then moves to the stash, see :meth:`after_stash`)."""
        return self.delivered.get(policy_id) == weights_stamp(policy)

    def after_stash(self, policy_id: str) -> None:
        stash_ref = _compat.stashed_state_ref(self.truth(), policy_id)
        if stash_ref is not None:
            self.delivered[policy_id] = stash_stamp(stash_ref)
            self.ledger.changed()

    def forget(self, policy_id: str) -> None:
        self.delivered.pop(policy_id, None)
        self.held_adds.pop(policy_id, None)
        versions.forget(self.ledger, policy_id)

    def left_to_rllib(self) -> list[str]:
        """Policies RLlib itself keeps current on this set's workers: on an evaluation set,
        the trained ones (``evaluate()`` syncs every policy first; between evaluations they lag
        by design); on a training set, those a learner thread trains (IMPALA, APPO push them)."""
        truth, own = self.truth(), _compat.local_worker(self.group)
        if truth is not None and own is not None and own is not truth:
            return [
                policy_id
                for policy_id in _compat.policy_ids(truth)
                if _compat.is_policy_to_train(truth, policy_id)
            ]
        return _compat.trained_in_background(self.group)

    def kept_in_sync(self) -> list[str]:
        """The policies whose copies on this set's workers the fix answers for, and checks at
        each use: every one but those RLlib syncs itself (the trained ones)."""
        truth = self.truth()
        left = set(self.left_to_rllib())
        return [
            policy_id
            for policy_id, source in self.sources().items()
            if policy_id not in left
            and not (source is truth and _compat.is_policy_to_train(truth, policy_id))
        ]

    def record_broadcast(self, policy_ids: list[str], nbytes: int, seconds: float) -> None:
        self.since_result.add(policy_ids, nbytes, seconds)
        self.lifetime.merge(Stats(1, len(policy_ids), nbytes, seconds))  # counts only, no ids


def sources(truth: Any, own: Any) -> dict[str, Any]:
    """Policy id -> the driver-side worker whose copy a set's remote workers must match: the
    training driver ``truth`` for the policies it has (also for the evaluation set), the set's
    own driver-side worker ``own`` for a policy only that set has (2.40+
    ``add_policy(..., add_to_env_runners=False)``)."""
    if truth is None:
        return {}
    if own is None or own is truth:
        return dict.fromkeys(_compat.policy_ids(truth), truth)
    truth_ids = set(_compat.policy_ids(truth))
    return {
        policy_id: truth if policy_id in truth_ids else own for policy_id in _compat.policy_ids(own)
    }


_records: weakref.WeakKeyDictionary[Any, GroupRecord] = weakref.WeakKeyDictionary()


def record_for(group: Any) -> GroupRecord:
    with LOCK:
        record = _records.get(group)
        if record is None:
            record = _records[group] = GroupRecord(group)
        return record


def existing_record(group: Any) -> GroupRecord | None:
    return _records.get(group)


def all_records() -> list[GroupRecord]:
    with LOCK:
        return list(_records.values())


def records_for_truth_map(policy_map: Any) -> list[GroupRecord]:
    """Records whose driver-side truth worker owns ``policy_map`` (empty on remote workers)."""
    return [
        record
        for record in list(_records.values())
        if getattr(record.truth(), "policy_map", None) is policy_map
    ]


def bind_algorithm(algo: Any) -> dict[str, GroupRecord]:
    """Records of ``algo``'s worker sets by role, each pointed at the driver's training worker."""
    truth = _compat.local_worker(_compat.training_group(algo))
    records = {}
    for role, group in _compat.groups(algo).items():
        record = records[role] = record_for(group)
        record.set_truth(truth)
    return records


_sent_in_last_result: weakref.WeakKeyDictionary[Any, list[str]] = weakref.WeakKeyDictionary()


def take_result(algo: Any) -> dict[str, float]:
    """The shim's figures since the last ``train()`` result: the broadcasts summed over
    ``algo``'s sets, and each set's audit of what its remote workers sampled with
    (``<role>_sampled_batches``, ...; see ``versions``)."""
    total = Stats()
    audit: dict[str, float] = {}
    for role, record in bind_algorithm(algo).items():
        total.merge(record.since_result)
        record.since_result = Stats()
        for name, value in record.ledger.take_figures().items():
            audit[f"{role}_{name}"] = value
    _sent_in_last_result[algo] = sorted(set(total.policy_ids))
    return {**total.as_result(), **audit}


def sent_in_last_result(algo: Any) -> list[str]:
    """Ids of the policies broadcast in the window the last result reported."""
    return list(_sent_in_last_result.get(algo, []))
