"""Compare every policy on every worker with the driver's copy, exactly.

Independent of whether the shim is installed: it is how a user (and our tests) see the bug.
"""

from __future__ import annotations

import functools
import math
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any

from . import _compat, _remote, _tracking
from ._remote import leaves

EQUAL, DIFFERS, MISSING, EXTRA, ERROR = "equal", "differs", "missing", "extra", "error"


@dataclass(frozen=True)
class PolicyCheck:
    """One policy on one worker, compared with the driver's copy."""

    group: str  # "training" or "evaluation"
    worker: str  # remote worker id, or "local" for the evaluation set's driver-side worker
    policy_id: str
    status: str  # equal | differs | missing (worker lacks it) | extra (driver lacks it) | error
    max_abs_diff: float  # 0.0 when equal; inf when shapes or keys differ or the policy is absent
    detail: str = ""


@dataclass(frozen=True)
class ConsistencyReport:
    """Every policy x every worker of the training and evaluation worker sets."""

    checks: tuple[PolicyCheck, ...]
    #: What the shim knows that may explain a difference (e.g. its broadcast was bypassed).
    notes: tuple[str, ...] = ()

    @property
    def consistent(self) -> bool:
        return all(check.status == EQUAL for check in self.checks)

    @property
    def mismatches(self) -> tuple[PolicyCheck, ...]:
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
        headers = ["policy"] + [f"{group[:4]}:{worker}" for group, worker in workers]
        rows = [
            [policy_id] + [cells.get((g, w, policy_id), "") for g, w in workers]
            for policy_id in policy_ids
        ]
        widths = [max(len(row[i]) for row in [headers, *rows]) for i in range(len(headers))]
        lines = ["  ".join(text.ljust(width) for text, width in zip(row, widths))
                 for row in [headers, *rows]]
        verdict = (
            "consistent: every worker holds the driver's weights"
            if self.consistent
            else f"INCONSISTENT: {len(self.mismatches)} of {len(self.checks)} policy copies "
            f"differ from the driver (max |dw| = {self.max_abs_diff():.4g})"
        )
        notes = [f"note: {note}" for note in self.notes]
        return "\n".join([f"rllib_addpolicy_fix.verify: {verdict}", *lines, *notes])


def _cell(check: PolicyCheck) -> str:
    if check.status == EQUAL:
        return "ok"
    if check.status == DIFFERS and math.isfinite(check.max_abs_diff):
        return f"|dw|={check.max_abs_diff:.3g}"
    return check.status


class InconsistentWeightsError(AssertionError):
    """Raised by :func:`assert_consistent`; ``report`` holds the full comparison."""

    def __init__(self, report: ConsistencyReport) -> None:
        super().__init__(str(report))
        self.report = report


def verify(algo: Any, policy_ids: Iterable[str] | None = None) -> ConsistencyReport:
    """Compare the driver's weights of every policy (or ``policy_ids``) with every remote worker
    of the training and evaluation sets, and the evaluation set's driver-side worker. Reading
    the workers sends nothing first (the shim's own calls never do): it shows them as they
    are."""
    truth = _compat.local_worker(_compat.training_group(algo))
    every_policy = policy_ids is None
    wanted = _compat.policy_ids(truth) if policy_ids is None else list(policy_ids)
    driver = {pid: _flatten(truth.policy_map[pid].get_weights())
              for pid in wanted if pid in truth.policy_map}
    checks: list[PolicyCheck] = []
    for role, group in _compat.groups(algo).items():
        read = functools.partial(_remote.policy_weights, policy_ids=wanted)
        copies: list[tuple[int | str, Any]] = (
            list(_compat.foreach_remote(group, read)) if _compat.num_remote_workers(group) else []
        )
        own = _compat.local_worker(group)
        expected = wanted
        if own is not None and own is not truth:
            # A set's own driver-side worker says which policies were added to it at all
            # (``add_policy(..., add_to_eval_env_runners=False)`` leaves some out on purpose).
            expected = [pid for pid in wanted if pid in _compat.policy_ids(own)]
            copies.append(("local", _remote.policy_weights(own, expected)))
        for worker_id, outcome in copies:
            checks.extend(
                _compare(role, str(worker_id), driver, expected, outcome, every_policy)
            )
    notes = tuple(record.bypassed for group in _compat.groups(algo).values()
                  if (record := _tracking.existing_record(group)) and record.bypassed)
    return ConsistencyReport(tuple(checks), notes)


def assert_consistent(algo: Any, policy_ids: Iterable[str] | None = None) -> ConsistencyReport:
    report = verify(algo, policy_ids)
    if not report.consistent:
        raise InconsistentWeightsError(report)
    return report


def _compare(
    role: str, worker: str, driver: dict[str, dict[str, Any]], wanted: list[str],
    outcome: dict[str, Any], every_policy: bool,
) -> list[PolicyCheck]:
    if outcome.get("error"):
        return [PolicyCheck(role, worker, "*", ERROR, math.inf, outcome["error"])]
    remote = outcome["weights"]
    checks = []
    if every_policy:  # policies a worker has that the driver does not (a half-done add/remove)
        for policy_id in sorted(set(outcome["policy_ids"]) - set(driver)):
            checks.append(PolicyCheck(role, worker, policy_id, EXTRA, math.inf))
    for policy_id in wanted:
        if policy_id not in remote:
            if policy_id in driver:
                checks.append(PolicyCheck(role, worker, policy_id, MISSING, math.inf))
        else:
            diff = _max_abs_diff(driver[policy_id], _flatten(remote[policy_id]))
            status = EQUAL if diff == 0.0 else DIFFERS
            checks.append(PolicyCheck(role, worker, policy_id, status, diff))
    return checks


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
