"""The driver's half of the point-of-use check: a version per policy per worker set, what each
call to the remote workers carries, and the audit figures that come back.

Every delivery of a policy the fix keeps in sync (an add's remote half, a broadcast, RLlib's own
sync or restore of it) gives it a version on the driver: the previous one plus one when the
weights' digest changed. Each call RLlib makes to a set's remote workers then carries
``{policy_id: (version, digest)}`` of those policies and one object-store reference to a
catalog of where each version's weights already are (the payload its delivery put there, or
one put of the driver's weights for a delivery RLlib made), which a worker fetches only to catch
up (``remote_check``). Kept in sync: every policy of the set but those RLlib syncs itself (the
trained ones: RLlib pushes them after each training step, and an asynchronous algorithm lags
them by design).
"""

from __future__ import annotations

import itertools
from collections.abc import Callable, Hashable
from dataclasses import dataclass, field
from typing import Any

from .. import _compat
from . import remote_check, this_thread
from .remote import weights_digest
from .remote_check import FIGURE_NAMES
from .stamps import current_weights

#: Off only in tests: the control that shows what the check at the point of use adds (the rest
#: of the fix, and the audit, stay on).
CATCH_UP_AT_USE = True
#: Off only in benchmarks: no check and no audit ride along (what the check costs).
CHECK_AT_USE = True

_add_order = itertools.count(1)


@dataclass(frozen=True)
class Delivery:
    """One policy's last delivery to a set's remote workers."""

    version: int
    digest: str
    #: The driver's stamp of the policy when it was delivered (``stamps``).
    stamp: Hashable
    #: Where the weights are in the object store: ``("weights", ref)`` (``{pid: weights}``),
    #: ``("add", ref)`` (an add's payload), or ``None`` until put (a delivery RLlib made).
    payload: tuple[str, Any] | None
    #: The add's payload (``{"kwargs": ..., "states": ...}``) for a policy added at run time.
    add_ref: Any = None


@dataclass
class Ledger:
    """The versions of one worker set, and the audit figures since the last result."""

    deliveries: dict[str, Delivery] = field(default_factory=dict)
    #: When each policy added at run time was added (a worker that lacks several adds them in
    #: the driver's order).
    order: dict[str, int] = field(default_factory=dict)
    figures: dict[str, int] = field(default_factory=lambda: dict.fromkeys(FIGURE_NAMES, 0))
    #: Bumped whenever what the set was delivered changes: the cached check is rebuilt then.
    serial: int = 0
    _check: dict[str, Any] | None = None
    _checked_at: tuple[int, int, int] | None = None
    #: What the catalog the last check carries was put from (its entries, the routing).
    _catalog: tuple[dict[str, Any], Any] | None = None

    def changed(self) -> None:
        self.serial += 1

    def record(self, policy_id: str, delivery: Delivery) -> None:
        self.deliveries[policy_id] = delivery
        self.changed()

    def take_figures(self) -> dict[str, int]:
        figures, self.figures = self.figures, dict.fromkeys(FIGURE_NAMES, 0)
        return figures

    def add_figures(self, figures: dict[str, Any]) -> None:
        for name in FIGURE_NAMES:
            value = int(figures.get(name, 0) or 0)
            if name == "max_version_lag":
                self.figures[name] = max(self.figures[name], value)
            else:
                self.figures[name] += value


#: ``{policy_id: (version, digest)}``: what a delivery publishes on each worker once applied.
Planned = dict[str, tuple[int, str]]


def plan(ledger: Ledger, weights: dict[str, Any]) -> Planned:
    """The version each of ``weights`` (``{pid: weights}``) gets if delivered now: the last
    one, plus one if the digest changed."""
    planned = {}
    for pid, policy_weights in weights.items():
        digest = weights_digest(policy_weights)
        before = ledger.deliveries.get(pid)
        version = 1 if before is None else before.version + (digest != before.digest)
        planned[pid] = (version, digest)
    return planned


def delivered_weights(
    ledger: Ledger, stamps: dict[str, Hashable], planned: Planned, ref: Any
) -> None:
    """A broadcast put ``{pid: weights}`` at ``ref`` and every healthy worker applied them."""
    for pid, (_, digest) in planned.items():
        ledger.record(pid, _delivery(ledger, pid, stamps[pid], digest, ("weights", ref)))


def delivered_adds(ledger: Ledger, stamps: dict[str, Hashable], planned: Planned, ref: Any) -> None:
    """Held adds went out with ``ref`` (``{"kwargs": ..., "states": ...}``) and were built."""
    for pid in stamps:
        ledger.order[pid] = next(_add_order)
        delivery = _delivery(ledger, pid, stamps[pid], planned[pid][1], ("add", ref), ref)
        ledger.record(pid, delivery)


def forget(ledger: Ledger, policy_id: str) -> None:
    ledger.deliveries.pop(policy_id, None)
    ledger.order.pop(policy_id, None)
    ledger.changed()


def _delivery(
    ledger: Ledger,
    pid: str,
    stamp: Hashable,
    digest: str,
    payload: tuple[str, Any] | None,
    add_ref: Any = None,
) -> Delivery:
    """What delivering ``digest`` of ``pid`` makes its record (not stored)."""
    before = ledger.deliveries.get(pid)
    version = 1 if before is None else before.version + (digest != before.digest)
    if before is not None and add_ref is None:
        add_ref = before.add_ref
    if payload is None and before is not None and digest == before.digest:
        payload = before.payload
    return Delivery(version, digest, stamp, payload, add_ref)


def check_for(record: Any, kept_in_sync: Callable[[], list[str]]) -> dict[str, Any] | None:
    """The point-of-use check of ``record``'s set (``remote_check.checked_call``): ``ref``
    (the expected versions and the catalog, in the object store), ``catch_up``, and, for the
    driver's own use, ``expect``; None when the set keeps nothing in sync. Rebuilt only after
    a delivery or a change on the driver."""
    ledger: Ledger = record.ledger
    key = _cache_key(record)
    if ledger._checked_at == key:
        return ledger._check
    import ray

    sources = record.sources()
    unput: dict[str, tuple[Delivery, Any]] = {}
    expect: dict[str, tuple[int, str]] = {}
    for pid in kept_in_sync():
        delivered = record.delivered.get(pid)
        if delivered is None or pid in record.held_adds or pid not in sources:
            continue  # not on the workers yet: the held add sends it
        delivery = ledger.deliveries.get(pid)
        if delivery is None or delivery.stamp != delivered:
            # Delivered by RLlib (its sync or restore) or met at the first look: the driver's
            # weights now are what the workers hold if its stamp has not moved since.
            stamp, weights = current_weights(sources[pid], pid)
            if stamp != delivered:
                # Changed on the driver and not delivered (its broadcast failed, or the change
                # came after this iteration's): the workers cannot catch up to it (nothing was
                # put), but what they sample with is counted against it, truthfully stale.
                version = 1 + (delivery.version if delivery is not None else 0)
                expect[pid] = (version, weights_digest(weights))
                continue
            delivery = _delivery(ledger, pid, stamp, weights_digest(weights), None)
            if delivery.payload is None:
                unput[pid] = (delivery, weights)
            else:
                ledger.deliveries[pid] = delivery
        expect[pid] = (delivery.version, delivery.digest)
    if unput:
        ref = ray.put({pid: weights for pid, (_, weights) in unput.items()})  # copies them
        for pid, (delivery, _) in unput.items():  # recorded once a worker can fetch them
            ledger.deliveries[pid] = _with_payload(delivery, ("weights", ref))
    ledger.changed()
    check = None
    if expect:
        entries = {}
        for pid, (version, _) in expect.items():
            delivered_now = ledger.deliveries.get(pid)
            if delivered_now is not None and delivered_now.version == version:
                if delivered_now.payload is not None:
                    entries[pid] = (*delivered_now.payload, delivered_now.add_ref)
        routing = _routing(_compat.local_worker(record.group))
        before = ledger._check
        if (
            before is not None
            and before["expect"] == expect
            and ledger._catalog == (entries, routing)
        ):
            check = dict(before, catch_up=CATCH_UP_AT_USE)  # nothing changed: no new put
        else:
            catalog = {
                "entries": entries,
                "order": {pid: ledger.order.get(pid, 0) for pid in expect},
                "routing": routing,
            }
            # One put per change, fetched once by each worker (``remote_check``): a call
            # carries its ref, not N expectations pickled for every worker it reaches.
            try:
                ref = ray.put({"expect": expect, "catalog": catalog})
            except Exception:  # noqa: BLE001 - a mapping function that cannot be pickled:
                # a worker that catches up then replays each add's own mapping instead.
                ref = ray.put({"expect": expect, "catalog": dict(catalog, routing=None)})
            check = {"ref": ref, "expect": expect, "catch_up": CATCH_UP_AT_USE}
            ledger._catalog = (entries, routing)
    ledger._check, ledger._checked_at = check, _cache_key(record)
    return check


def _cache_key(record: Any) -> tuple[int, int, int]:
    """What a cached check depends on: the set's deliveries, the driver's policies, and which
    of them RLlib trains (``set_is_policy_to_train`` replaces that function)."""
    to_train = getattr(record.truth(), "is_policy_to_train", None)
    return (record.ledger.serial, this_thread.driver_changes(), id(to_train))


_code: tuple[str, Any] | None = None


def code_ref() -> Any:
    """The object-store ref of ``remote_check.checked_call``, put once per Ray job of this
    process (a call carries the ref and a small stub: ``remote_check.from_the_object_store``)."""
    global _code
    import ray

    job = ray.get_runtime_context().get_job_id()
    if _code is None or _code[0] != job:
        _code = (job, ray.put(remote_check.checked_call))
    return _code[1]


def _with_payload(delivery: Delivery, payload: tuple[str, Any]) -> Delivery:
    return Delivery(delivery.version, delivery.digest, delivery.stamp, payload, delivery.add_ref)


def _routing(own: Any) -> tuple[Any, Any] | None:
    """The set's driver-side policy mapping and policies to train, which a worker that adds
    policies to catch up takes over (replaying each add's own would roll them back)."""
    if own is None or not hasattr(own, "policy_mapping_fn"):
        return None
    return (own.policy_mapping_fn, getattr(own, "is_policy_to_train", None))


def delivered_versions(record: Any) -> dict[str, int]:
    """The version each policy the set keeps in sync was last delivered at, as the last check
    carried it (what ``verify()`` shows beside each remote copy's own)."""
    check = record.ledger._check
    return {pid: version for pid, (version, _) in (check or {}).get("expect", {}).items()}
