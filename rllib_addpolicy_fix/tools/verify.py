"""Compare every policy on every worker with the driver's copy, exactly.

Independent of whether the shim is installed: it is how a user (and our tests) see the bug.
"""

from __future__ import annotations

import dataclasses
import functools
import math
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any

from .. import _compat
from .._guard import worker_errors_raised
from ..patching import install
from ..syncing import broadcast, held_adds, remote, restarts, tracking, transport, versions
from ..syncing.remote import leaves
from ..syncing.stamps import current_weights

EQUAL, DIFFERS, MISSING, EXTRA, ERROR = "equal", "differs", "missing", "extra", "error"
#: Differences that are not a bug: a change the shim sends before the workers next sample; a
#: trained policy on evaluation workers between evaluations (RLlib syncs it at each
#: ``evaluate()``); a worker that is out of service or did not answer (RLlib restores it from
#: the driver's state before it samples again); a worker Ray restarted behind RLlib's back,
#: which the shim hands to RLlib's restore before it samples again (``syncing/restarts``).
PENDING, LAGGING, UNREACHABLE, RESTARTED = "pending", "lagging", "unreachable", "restarted"
DIVERGED = frozenset({DIFFERS, MISSING, EXTRA, ERROR})


@dataclass(frozen=True)
class PolicyCheck:
    """One policy on one worker, compared with the driver's copy."""

    group: str  # "training" or "evaluation"
    worker: str  # remote worker id, or "local" for the evaluation set's driver-side worker
    policy_id: str  # "*" for a check of the whole worker (error, unreachable)
    #: equal | differs | missing (worker lacks it) | extra (driver lacks it) | error, which are
    #: bugs; or pending | lagging | unreachable | restarted, which are not (see
    #: :data:`PENDING`).
    status: str
    #: 0.0 when equal; inf when shapes or keys differ or the policy is absent; 0.0 for a
    #: worker that could not be read.
    max_abs_diff: float
    detail: str = ""
    #: The version of the policy the worker's point-of-use check last confirmed there (None:
    #: none, e.g. a new process, or a policy RLlib syncs itself), and the one the driver last
    #: delivered to the set (None: none yet).
    version: int | None = None
    driver_version: int | None = None


@dataclass(frozen=True)
class ConsistencyReport:
    """Every policy x every worker of the training and evaluation worker sets."""

    checks: tuple[PolicyCheck, ...]
    #: What the shim knows that may explain a difference (e.g. its broadcast was bypassed).
    notes: tuple[str, ...] = ()

    @property
    def consistent(self) -> bool:
        """No copy has diverged from the driver: every difference is pending, lagging by
        design, or on an unreachable worker."""
        return not self.diverged

    @property
    def diverged(self) -> tuple[PolicyCheck, ...]:
        return tuple(check for check in self.checks if check.status in DIVERGED)

    @property
    def mismatches(self) -> tuple[PolicyCheck, ...]:
        """Every copy that is not equal, whatever the reason."""
        return tuple(check for check in self.checks if check.status != EQUAL)

    def max_abs_diff(self, policy_id: str | None = None, group: str | None = None) -> float:
        diffs = [
            check.max_abs_diff
            for check in self.checks
            if (policy_id is None or check.policy_id == policy_id)
            and (group is None or check.group == group)
        ]
        return max(diffs, default=0.0)

    def __str__(self) -> str:
        if not self.checks:
            return "rllib_addpolicy_fix.verify: no remote workers to compare."
        workers = sorted({(c.group, c.worker) for c in self.checks})
        policy_ids = sorted({c.policy_id for c in self.checks})
        cells = {(c.group, c.worker, c.policy_id): _cell(c) for c in self.checks}
        headers = ["policy"] + [f"{group}:{worker}" for group, worker in workers]
        rows = [
            [policy_id] + [cells.get((g, w, policy_id), "") for g, w in workers]
            for policy_id in policy_ids
        ]
        widths = [max(len(row[i]) for row in [headers, *rows]) for i in range(len(headers))]
        lines = [
            "  ".join(text.ljust(width) for text, width in zip(row, widths))
            for row in [headers, *rows]
        ]
        counts = {
            status: sum(c.status == status for c in self.checks)
            for status in (PENDING, LAGGING, UNREACHABLE, RESTARTED)
        }
        besides = ", ".join(f"{n} {status}" for status, n in counts.items() if n)
        verdict = (
            "consistent: every worker holds the driver's weights"
            if not self.mismatches
            else f"consistent, but {besides} (not a bug: see the legend)"
            if self.consistent
            else f"INCONSISTENT: {len(self.diverged)} of {len(self.checks)} policy copies "
            f"diverged from the driver (max |dw| = {self.max_abs_diff():.4g})"
        )
        if besides:
            lines.append(
                "legend: pending = sent before the workers next sample; lagging = a trained "
                "policy on evaluation workers, synced at each evaluate(); unreachable = a worker "
                "out of service, restored from the driver before it samples again; restarted = a "
                "worker Ray restarted without RLlib noticing, handed to RLlib's restore before it "
                "samples again"
            )
        notes = [f"note: {note}" for note in self.notes]
        return "\n".join([f"rllib_addpolicy_fix.verify: {verdict}", *lines, *notes])


def _cell(check: PolicyCheck) -> str:
    return _comparison(check) + _versions(check)


def _comparison(check: PolicyCheck) -> str:
    if check.status == EQUAL:
        return "ok"
    if check.status in (DIFFERS, PENDING, LAGGING) and math.isfinite(check.max_abs_diff):
        label = "" if check.status == DIFFERS else f"{check.status} "
        return f"{label}|dw|={check.max_abs_diff:.3g}"
    if check.detail:
        return f"{check.status}: {check.detail}"
    return check.status


def _versions(check: PolicyCheck) -> str:
    """`` v3`` (the copy holds the version the driver delivered), `` v2/v3`` (it holds v2),
    `` -/v3`` (it holds none the check confirmed yet)."""
    if check.driver_version is None:
        return ""
    if check.version == check.driver_version:
        return f" v{check.version}"
    return f" {'-' if check.version is None else f'v{check.version}'}/v{check.driver_version}"


class InconsistentWeightsError(AssertionError):
    """Raised by :func:`assert_consistent`; ``report`` holds the full comparison."""

    def __init__(self, report: ConsistencyReport) -> None:
        super().__init__(str(report))
        self.report = report


def verify(
    algo: Any, policy_ids: Iterable[str] | None = None, *, send_pending: bool = False
) -> ConsistencyReport:
    """Compare the driver's weights of every policy (or ``policy_ids``) with every remote worker
    of the training and evaluation sets, and the evaluation set's driver-side worker.

    Reading the workers is a use of them, and an add is not done before they have it: with the
    shim installed, an add still held for the workers' next use is sent first, as before any
    other call to them. Weight changes pending for the next sample are not sent (they show as
    "pending"), unless ``send_pending`` asks for that first (``sync(algo)``)."""
    restarted: dict[str, list[int]] = {}
    if install.is_installed():
        if send_pending:
            broadcast.push_everything(algo)
        for group in _compat.groups(algo).values():  # an add is not done before they have it
            with worker_errors_raised():
                held_adds.send_held_adds(group)
        restarted = {
            role: restarts.unnoticed(group) for role, group in _compat.groups(algo).items()
        }
    truth = _compat.local_worker(_compat.training_group(algo))
    every_policy = policy_ids is None
    requested = None if policy_ids is None else list(policy_ids)
    flattened: dict[tuple[int, str], dict[str, Any]] = {}
    checks: list[PolicyCheck] = []
    for role, group in _compat.groups(algo).items():
        sources = tracking.sources(truth, _compat.local_worker(group))
        expected = list(sources) if requested is None else [p for p in requested if p in sources]
        driver = {}
        for pid in expected:
            key = (id(sources[pid]), pid)
            if key not in flattened:
                flattened[key] = _flatten(current_weights(sources[pid], pid)[1])  # stash not loaded
            driver[pid] = flattened[key]
        excused = _excused(group)
        record = tracking.existing_record(group)
        delivered = versions.delivered_versions(record) if record is not None else {}
        read = functools.partial(remote.policy_weights, policy_ids=expected)
        replies = transport.foreach_remote(group, read)
        restarted_here = restarted.get(role, [])
        for worker_id, outcome in replies:
            if worker_id not in restarted_here:
                found = _compare(role, str(worker_id), driver, outcome, every_policy, excused)
                checks.extend(_with_versions(found, outcome.get("versions", {}), delivered))
        for worker_id in restarted_here:
            why = "restarted by Ray without RLlib noticing; restored before it samples again"
            checks.append(PolicyCheck(role, str(worker_id), "*", RESTARTED, 0.0, why))
        own = _compat.local_worker(group)
        if own is not None and own is not truth:
            # The set's own driver-side worker, for the policies it takes from the training
            # driver (it holds the driver's copy of those only its set has).
            from_truth = {pid: copy for pid, copy in driver.items() if sources[pid] is truth}
            outcome = remote.policy_weights(own, list(from_truth))
            checks.extend(_compare(role, "local", from_truth, outcome, False, excused))
        out_of_service = {*replies.unreached, *_compat.unhealthy_worker_ids(group)}
        for worker_id in sorted(out_of_service - set(restarted_here)):
            why = (
                "died"
                if worker_id in replies.failed
                else f"no answer in {replies.timeout_s:g} s"
                if worker_id in replies.hung
                else "out of service"
            )
            checks.append(PolicyCheck(role, str(worker_id), "*", UNREACHABLE, 0.0, why))
    notes = tuple(
        record.bypassed
        for group in _compat.groups(algo).values()
        if (record := tracking.existing_record(group)) and record.bypassed
    )
    return ConsistencyReport(tuple(checks), notes)


def assert_consistent(
    algo: Any, policy_ids: Iterable[str] | None = None, *, send_pending: bool = False
) -> ConsistencyReport:
    """:func:`verify`, raising :class:`InconsistentWeightsError` if any copy diverged (pending,
    lagging and unreachable copies do not count)."""
    report = verify(algo, policy_ids, send_pending=send_pending)
    if not report.consistent:
        raise InconsistentWeightsError(report)
    return report


def _excused(group: Any) -> dict[str, str]:
    """Policies whose difference on this set is not a bug: lagging by design, or pending
    (only while the shim is installed to send them, and not bypassed)."""
    record = tracking.existing_record(group)
    excused: dict[str, str] = {}
    if record is not None:
        with tracking.LOCK:
            excused.update((pid, LAGGING) for pid in record.left_to_rllib())
            if install.is_installed() and not record.bypassed:
                excused.update((pid, PENDING) for pid in broadcast.pending_before_use(record))
    return excused


def _compare(
    role: str,
    worker: str,
    driver: dict[str, dict[str, Any]],
    outcome: dict[str, Any],
    every_policy: bool,
    excused: dict[str, str],
) -> list[PolicyCheck]:
    if outcome.get("error"):
        return [PolicyCheck(role, worker, "*", ERROR, math.inf, outcome["error"])]
    remote = outcome["weights"]
    checks = []
    if every_policy:  # policies a worker has that the driver does not (a half-done add/remove)
        for policy_id in sorted(set(outcome["policy_ids"]) - set(driver)):
            checks.append(PolicyCheck(role, worker, policy_id, EXTRA, math.inf))
    for policy_id in driver:
        if policy_id not in remote:
            if policy_id in driver:
                checks.append(PolicyCheck(role, worker, policy_id, MISSING, math.inf))
        else:
            diff = _max_abs_diff(driver[policy_id], _flatten(remote[policy_id]))
            status = EQUAL if diff == 0.0 else excused.get(policy_id, DIFFERS)
            checks.append(PolicyCheck(role, worker, policy_id, status, diff))
    return checks


def _with_versions(
    checks: list[PolicyCheck], held: dict[str, int], delivered: dict[str, int]
) -> list[PolicyCheck]:
    """Each remote copy's version beside its comparison, for the policies the fix keeps in
    sync (those it delivered a version of)."""
    return [
        dataclasses.replace(
            check, version=held.get(check.policy_id), driver_version=delivered[check.policy_id]
        )
        if check.policy_id in delivered
        else check
        for check in checks
    ]


def _flatten(tree: Any) -> dict[str, Any]:
    import numpy as np

    return {path: np.asarray(leaf) for path, leaf in leaves(tree)}


def _max_abs_diff(left: dict[str, Any], right: dict[str, Any]) -> float:
    import numpy as np

    if left.keys() != right.keys():
        return math.inf
    worst = 0.0
    for key, a in left.items():
        b = right[key]
        if a.shape != b.shape:
            return math.inf
        if a.size and not np.array_equal(a, b):
            delta = np.abs(a.astype(np.float64) - b.astype(np.float64))
            worst = max(worst, float(np.nanmax(delta)) if not np.isnan(delta).all() else math.inf)
    return worst
