"""The one way tests read a ``verify`` report: never by comparing nothing.

A weight check passes only if each policy it names (every policy compared, if it names none) was
compared on every remote worker of every worker set it was compared in, and on at least one, and
no remote worker was left uncompared (unreachable, restarted, an error reading it) unless the
test is about that worker and names it in ``uncompared``. An empty report, or one whose only
worker could not be read, fails instead of passing with ``max_abs_diff() == 0.0``.
"""

from __future__ import annotations

from collections.abc import Collection, Iterable

import rllib_addpolicy_fix as fix

#: A remote worker the test expects not to be compared: (set, worker id).
Worker = tuple[str, str]


def compared_everywhere(
    report: fix.ConsistencyReport,
    policy_ids: Iterable[str] | str | None = None,
    *,
    uncompared: Collection[Worker] = (),
) -> list[str]:
    """Assert the report compared ``policy_ids`` everywhere (see the module); returns the ids."""
    remote = [check for check in report.checks if check.worker != "local"]
    assert remote, f"verify compared nothing on any remote worker:\n{report}"
    excused = {(group, str(worker)) for group, worker in uncompared}
    whole = [
        (c.group, c.worker, c.status)
        for c in remote
        if c.policy_id == "*" and (c.group, c.worker) not in excused
    ]
    assert not whole, f"remote workers not compared {whole}:\n{report}"
    workers: dict[str, set[str]] = {}
    for check in remote:
        if (check.group, check.worker) not in excused:
            workers.setdefault(check.group, set()).add(check.worker)
    if policy_ids is None:
        ids = sorted({c.policy_id for c in remote} - {"*"})
    else:
        ids = [policy_ids] if isinstance(policy_ids, str) else list(policy_ids)
    assert ids, f"verify compared no policy on any remote worker:\n{report}"
    for pid in ids:
        found: dict[str, set[str]] = {}
        for check in remote:
            if check.policy_id == pid and (check.group, check.worker) not in excused:
                found.setdefault(check.group, set()).add(check.worker)
        assert found, f"{pid!r} was compared on no remote worker:\n{report}"
        short = {g: sorted(workers[g] - seen) for g, seen in found.items() if seen != workers[g]}
        assert not short, f"{pid!r} was not compared on remote workers {short}:\n{report}"
    return ids


def expect_equal(
    report: fix.ConsistencyReport,
    policy_ids: Iterable[str] | str | None = None,
    *,
    uncompared: Collection[Worker] = (),
) -> None:
    """Every copy of ``policy_ids`` (of every policy, if None) equals the driver's exactly,
    compared everywhere; and no copy in the report diverged."""
    for pid in compared_everywhere(report, policy_ids, uncompared=uncompared):
        assert report.max_abs_diff(pid) == 0.0, f"{pid!r} differs:\n{report}"
    assert report.consistent, str(report)


def expect_consistent(
    report: fix.ConsistencyReport, *, uncompared: Collection[Worker] = ()
) -> None:
    """Every policy compared everywhere, and no copy diverged: a pending copy (sent before
    the workers next sample) or a lagging one (synced by RLlib at each ``evaluate()``) may
    differ."""
    compared_everywhere(report, uncompared=uncompared)
    assert report.consistent, str(report)


def expect_diverged(
    report: fix.ConsistencyReport,
    policy_id: str | None = None,
    *,
    uncompared: Collection[Worker] = (),
) -> None:
    """A control: ``policy_id`` (any policy, if None) differs from the driver's copy where it
    was compared; an error cell or an uncompared worker does not count as a divergence."""
    ids = compared_everywhere(report, policy_id, uncompared=uncompared)
    compared = [c for c in report.checks if c.policy_id in ids]
    assert any(c.max_abs_diff > 0.0 for c in compared), (
        f"without the shim this must diverge, but:\n{report}"
    )
