"""What the remote workers of each worker set were last sent, and whether the driver moved on.

For every worker set the shim keeps ``delivered[policy_id] = stamp``: the stamp the driver's
policy had when its weights last reached that set's remote workers (by RLlib's own
``sync_weights``, by the state the shim put into a remote ``add_policy``, or by a shim broadcast).
A policy is *pending* when its current stamp differs. Stamps are cheap for torch policies (tensor
version counters, no weight read) and a content digest for everything else.
"""

from __future__ import annotations

import hashlib
import itertools
import threading
import weakref
from collections.abc import Hashable
from dataclasses import dataclass, field
from typing import Any

from . import _compat
from ._state import leaves

#: One lock for all shim bookkeeping and broadcasts: adds from callbacks and user threads must
#: not interleave a half-recorded add with a broadcast. Re-entrant: add_policy nests calls.
LOCK = threading.RLock()

_serial_counter = itertools.count(1)
_policy_serials: weakref.WeakKeyDictionary[Any, int] = weakref.WeakKeyDictionary()


def _policy_serial(policy: Any) -> int:
    """A number unique to this policy object for the process's lifetime (``id()`` is reused)."""
    try:
        serial = _policy_serials.get(policy)
        if serial is None:
            serial = _policy_serials[policy] = next(_serial_counter)
        return serial
    except TypeError:  # not weak-referenceable: fall back to identity
        return id(policy)


def weights_stamp(policy: Any) -> Hashable:
    """Changes whenever ``policy.get_weights()`` would return different values."""
    if _compat.weights_read_from_torch_model(policy):
        model = policy.model
        tensors = itertools.chain(model.parameters(), model.buffers())
        return (_policy_serial(policy), tuple((id(t), t._version) for t in tensors))
    return ("digest", weights_digest(policy.get_weights()))


def stash_stamp(state_ref: Any) -> Hashable:
    """Stamp of a policy evicted from the driver's LRU policy map: its stashed state's ref (a
    new ref for every eviction; the state holds the weights the policy had then)."""
    return ("stash", state_ref.hex())


def weights_digest(tree: Any) -> str:
    import numpy as np

    digest = hashlib.blake2b(digest_size=16)
    for path, leaf in sorted(leaves(tree), key=lambda item: item[0]):
        array = np.ascontiguousarray(np.asarray(leaf))
        digest.update(f"{path}{array.dtype.str}{array.shape}".encode())
        if array.size:
            digest.update(array.view(np.uint8).reshape(-1).data)
    return digest.hexdigest()


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

    def as_result(self) -> dict[str, Any]:
        return {
            "broadcasts": self.broadcasts,
            "policies_broadcast": self.policies_broadcast,
            "bytes_broadcast": self.bytes_broadcast,
            "broadcast_seconds": self.broadcast_seconds,
            "policy_ids": sorted(set(self.policy_ids)),
        }


class GroupRecord:
    """Delivery bookkeeping for one worker set."""

    def __init__(self, group: Any) -> None:
        self._group = weakref.ref(group)
        self._truth: weakref.ReferenceType[Any] | None = None
        self.delivered: dict[str, Hashable] = {}
        self.since_result = Stats()
        self.lifetime = Stats()

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

    def mark_delivered(self, policy_ids: list[str] | None = None) -> None:
        """The remote workers now hold the driver's current weights for ``policy_ids``
        (all policies the driver has loaded when None)."""
        truth = self.truth()
        if truth is None:
            return
        for policy_id in _compat.policy_ids(truth) if policy_ids is None else policy_ids:
            policy = _compat.loaded_policy(truth, policy_id)
            if policy is not None:
                self.delivered[policy_id] = weights_stamp(policy)

    def pending(self) -> list[str]:
        """Policies of this set whose driver weights differ from what its workers were sent.

        A policy evicted from the driver's LRU cache is judged by its stash (see
        :meth:`before_stash`), never loaded here: loading would evict another one.
        """
        truth, own = self.truth(), _compat.local_worker(self.group)
        if truth is None:
            return []
        own_ids = set(_compat.policy_ids(own)) if own is not None and own is not truth else None
        changed = []
        for policy_id in _compat.policy_ids(truth):
            if own_ids is not None and policy_id not in own_ids:
                continue  # never added to this set
            if self._changed(truth, policy_id):
                changed.append(policy_id)
        return sorted(changed)

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

    def forget(self, policy_id: str) -> None:
        self.delivered.pop(policy_id, None)

    def record_broadcast(self, policy_ids: list[str], nbytes: int, seconds: float) -> None:
        self.since_result.add(policy_ids, nbytes, seconds)
        self.lifetime.add(policy_ids, nbytes, seconds)


_records: weakref.WeakKeyDictionary[Any, GroupRecord] = weakref.WeakKeyDictionary()


def record_for(group: Any) -> GroupRecord:
    with LOCK:
        record = _records.get(group)
        if record is None:
            record = _records[group] = GroupRecord(group)
        return record


def records_for_truth_map(policy_map: Any) -> list[GroupRecord]:
    """Records whose driver-side truth worker owns ``policy_map`` (empty on remote workers)."""
    return [record for record in list(_records.values())
            if getattr(record.truth(), "policy_map", None) is policy_map]


def bind_algorithm(algo: Any) -> dict[str, GroupRecord]:
    """Records of ``algo``'s worker sets by role, each pointed at the driver's training worker."""
    truth = _compat.local_worker(_compat.training_group(algo))
    records = {}
    for role, group in _compat.groups(algo).items():
        record = records[role] = record_for(group)
        record.set_truth(truth)
    return records


def take_result(algo: Any) -> dict[str, Any]:
    """The shim's figures since the last ``train()`` result, summed over ``algo``'s sets."""
    total = Stats()
    for record in bind_algorithm(algo).values():
        total.merge(record.since_result)
        record.since_result = Stats()
    return total.as_result()
