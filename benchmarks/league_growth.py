"""Cost of adding a snapshot as the league grows: the bug, the manual fixes, and the shim.

One algorithm per pattern (so each league grows on its own), all built and trained once up front
("main" then has optimizer moments, as in a real league) and measured interleaved, one add per
pattern per round in rotating order, so machine noise hits every pattern alike.

Toggling the shim off and on for the other patterns drops its tensor cache, which steady use
keeps; it is refilled before each timed shim add, outside the timing.

For the shim patterns the add is timed as the user's code sees it; the broadcast the shim makes
before the next sample (what ``rllib_addpolicy_fix.sync`` does) is timed on its own right after,
and reported both separately and added in ("incl. broadcast"), so the shim is also compared with
the other patterns at "remote workers correct".

Ratios between patterns are the median, over the N rounds, of the ratio within a round: the adds
of one round run back to back, so a slow stretch of the machine hits both sides of each ratio.

Growth with league size is read twice. In the interleaved run the first and the last 10 adds are
minutes apart, so the machine's drift (and the other five leagues growing in the same driver)
lands in "last / first"; it is printed for reference. The target is read from a second
measurement, side by side: for the shim-fixed pattern (and the buggy add, for reference) one
league starts empty and one is first grown, untimed, to N - 10; then rounds of one add to each
time the first 10 and the last 10 adds of growing a league to N in the same minutes.

Memory: six leagues of N=100 at W=4 (30 processes) need more than a 24 GiB machine has, and Ray's
out-of-memory killer then restarts workers mid-run. So the larger W runs first, in a fresh driver,
without the stretch pattern (``policy_state=`` with the shim; measured at the smallest W), and the
object store is capped at 4 GiB (Ray's default is 30 % of memory), since the pages its puts touch
count on top. RLlib's example pattern keeps a few GiB in the store (the whole league per sync),
so a smaller cap makes it spill to disk.

    python benchmarks/league_growth.py [--snapshots 100] [--workers 2 4] [--hidden 512 512]
"""

from __future__ import annotations

import argparse
import os
import statistics
import sys
import time
from collections.abc import Callable, Iterator
from typing import Any, TypeVar

import ray

import rllib_addpolicy_fix as fix
from rllib_addpolicy_fix import _compat
from rllib_addpolicy_fix.syncing import tracking as _tracking
from rllib_addpolicy_fix.tools import demo


def with_state(algo: Any, dst: str) -> None:
    src = algo.get_policy("main")
    algo.add_policy(
        dst,
        type(src),
        observation_space=src.observation_space,
        action_space=src.action_space,
        config=src.config.copy(),
        policy_state=src.get_state(),
    )


def copy_then_sync_one(algo: Any, dst: str) -> None:
    demo.copy_weights(algo, dst)
    _compat.training_group(algo).sync_weights(policies=[dst], timeout_seconds=None)


def rllib_example(algo: Any, dst: str) -> None:
    """RLlib's self-play example: add, set_state, then a blocking sync of every policy."""
    src = algo.get_policy("main")
    new = algo.add_policy(
        dst,
        type(src),
        observation_space=src.observation_space,
        action_space=src.action_space,
        config=src.config.copy(),
    )
    new.set_state(src.get_state())
    _compat.training_group(algo).sync_weights(timeout_seconds=None)


T = TypeVar("T")

SHIM_FIXED = "shim: buggy add (seed code unedited)"
BUGGY = "buggy add + driver set_weights"
WITH_STATE = "add(policy_state=main.get_state())"
FLOOR = "add + set_weights + sync_weights([pid])"
SHIM_WITH_STATE = "shim: add(policy_state=...)"

#: label -> (add function, shim installed?)
PATTERNS: dict[str, tuple[Callable[[Any, str], None], bool]] = {
    BUGGY: (demo.copy_weights, False),
    WITH_STATE: (with_state, False),
    FLOOR: (copy_then_sync_one, False),
    "RLlib example: set_state + sync all": (rllib_example, False),
    SHIM_FIXED: (demo.copy_weights, True),
    SHIM_WITH_STATE: (with_state, True),
}


def build(workers: int, hidden: list[int], capacity: int) -> Any:
    # RLlib wants the train batch to be a multiple of workers x rollout fragment (20).
    return demo.build_league(
        workers, hidden=tuple(hidden), train_batch_size=100 * workers, policy_map_capacity=capacity
    )


def league_edge(snapshots: int) -> int:
    """How many adds make "the first" and "the last" adds of growing a league."""
    return 10 if snapshots >= 20 else max(snapshots // 2, 1)


def timed_add(label: str, algo: Any, policy_id: str) -> tuple[float, float | None]:
    """ms of one add by ``label``'s pattern, and for the shim patterns ms of the broadcast the
    shim then makes before the next sample (None for the others)."""
    add, shim = PATTERNS[label]
    fix.install() if shim else fix.uninstall()
    if shim:  # untimed: uninstall() drops the shim's tensor cache; steady use keeps it
        _tracking.record_for(_compat.training_group(algo)).pending()
    started = time.perf_counter()
    add(algo, policy_id)
    add_ms = (time.perf_counter() - started) * 1000.0
    return add_ms, fix.sync(algo).seconds * 1000.0 if shim else None


def rotations(items: list[T], rounds: int) -> Iterator[tuple[int, list[T]]]:
    """``(round, items in this round's order)``: each item goes first in turn."""
    for index in range(rounds):
        shift = index % len(items)
        yield index, items[shift:] + items[:shift]


def run(
    workers: int, snapshots: int, hidden: list[int], labels: list[str]
) -> dict[str, list[float]]:
    fix.install()
    algos = {label: build(workers, hidden, snapshots + 10) for label in labels}
    for algo in algos.values():
        algo.train()
    times: dict[str, list[float]] = {label: [] for label in labels}
    broadcast_ms: dict[str, list[float]] = {label: [] for label in labels if PATTERNS[label][1]}
    for index, rotation in rotations(labels, snapshots):
        for label in rotation:
            add_ms, sync_ms = timed_add(label, algos[label], f"main_v{index}")
            times[label].append(add_ms)
            if sync_ms is not None:
                broadcast_ms[label].append(sync_ms)
        if (index + 1) % 10 == 0:
            print(f"  W={workers}: {index + 1}/{snapshots} snapshots", file=sys.stderr, flush=True)
    fix.install()
    for label, algo in algos.items():
        newest = f"main_v{snapshots - 1}"
        # Equal weights, not report.consistent: a copy the shim never sent (the patterns run
        # without it) counts as pending there, not as wrong.
        times[label + " correct"] = [float(fix.verify(algo, [newest]).max_abs_diff(newest) == 0.0)]
        if PATTERNS[label][1]:
            times[label + " broadcast"] = broadcast_ms[label]
            record = _tracking.record_for(_compat.training_group(algo))
            times[label + " bytes"] = [record.lifetime.bytes_broadcast / snapshots]
            weights = algo.get_policy("main").get_weights().values()
            times["one policy bytes"] = [float(sum(w.nbytes for w in weights))]
        algo.stop()
    return times


def small_vs_large(
    workers: int,
    snapshots: int,
    hidden: list[int],
    edge: int,
    labels: tuple[str, ...] = (SHIM_FIXED, BUGGY),
) -> dict[str, list[float]]:
    """ms per add into a league of 0..edge-1 snapshots and, side by side, into one of
    snapshots-edge..snapshots-1: the first and the last ``edge`` adds of growing a league to
    ``snapshots``, measured in the same rounds instead of minutes apart."""
    fix.install()
    leagues = {
        (label, size): build(workers, hidden, snapshots + 10)
        for label in labels
        for size in ("small", "large")
    }
    for (label, size), algo in leagues.items():
        algo.train()
        if size == "large":  # untimed: grow it to where the last adds start
            for index in range(snapshots - edge):
                timed_add(label, algo, f"main_v{index}")
    times: dict[str, list[float]] = {f"{label} {size}": [] for label, size in leagues}
    for index, rotation in rotations(list(leagues), edge):
        for label, size in rotation:
            offset = 0 if size == "small" else snapshots - edge
            add_ms, _ = timed_add(label, leagues[label, size], f"main_v{offset + index}")
            times[f"{label} {size}"].append(add_ms)
    fix.install()
    for algo in leagues.values():
        algo.stop()
    return times


def report(workers: int, snapshots: int, times: dict[str, list[float]]) -> bool:
    """Print the table and every target with its ratio; True when all targets hold."""
    edge = league_edge(snapshots)

    def first_last(series: list[float]) -> tuple[float, float]:
        return statistics.median(series[:edge]), statistics.median(series[-edge:])

    def paired(numerator: list[float], denominator: list[float]) -> float:
        """Median over the rounds of the ratio within a round."""
        return statistics.median(n / d for n, d in zip(numerator, denominator))

    print(
        f"\nW={workers} remote workers, N={snapshots} snapshots; ms per add, median of the "
        f"first {edge} -> the last {edge} adds"
    )
    print(f"  {'pattern':<44} {'first':>7}    {'last':>7}   remote correct")
    for label, (_, shim) in PATTERNS.items():
        if label not in times:
            continue
        first, last = first_last(times[label])
        correct = "yes" if times[label + " correct"][0] else "NO"
        print(f"  {label:<44} {first:7.1f} -> {last:7.1f}   {correct}")
        if shim:
            b_first, b_last = first_last(times[label + " broadcast"])
            print(
                f"  {'  + its broadcast before the next sample':<44} {b_first:7.1f} -> "
                f"{b_last:7.1f}"
            )
    with_broadcast = [a + b for a, b in zip(times[SHIM_FIXED], times[SHIM_FIXED + " broadcast"])]
    print(
        f"  the first {edge} and the last {edge} adds again, measured side by side (small and "
        "large league)"
    )
    for label in (SHIM_FIXED, BUGGY):
        small = statistics.median(times[label + " small"])
        large = statistics.median(times[label + " large"])
        print(f"  {label:<44} {small:7.1f} -> {large:7.1f}")
    targets = [
        # The add holds its remote half until the next use: compared with delivery included.
        (
            "shim-fixed incl. broadcast / buggy add",
            paired(with_broadcast, times[BUGGY]),
            "<=",
            1.10,
        ),
        (
            f"shim-fixed last {edge} / first {edge} (side by side)",
            paired(times[SHIM_FIXED + " large"], times[SHIM_FIXED + " small"]),
            "<=",
            1.10,
        ),
        ("policy_state=... / shim-fixed", paired(times[WITH_STATE], times[SHIM_FIXED]), ">=", 2.0),
        (
            "bytes per refresh / (W x one policy)",
            times[SHIM_FIXED + " bytes"][0] / (workers * times["one policy bytes"][0]),
            "<=",
            1.05,
        ),
    ]
    print("  targets")
    met_all = True
    for name, value, sense, goal in targets:
        met = value <= goal if sense == "<=" else value >= goal
        met_all &= met
        print(
            f"    {name:<42} {value:6.2f}  (target {sense} {goal:.2f}: "
            f"{'met' if met else 'MISSED'})"
        )
    shim_first, shim_last = first_last(times[SHIM_FIXED])
    buggy_first, buggy_last = first_last(times[BUGGY])
    print("  for reference (not targets)")
    references = [
        (
            "buggy add last / first (side by side)",
            paired(times[BUGGY + " large"], times[BUGGY + " small"]),
        ),
        ("shim-fixed last / first (interleaved)", shim_last / shim_first),
        ("buggy add last / first (interleaved)", buggy_last / buggy_first),
        ("shim-fixed add alone / buggy add", paired(times[SHIM_FIXED], times[BUGGY])),
        ("shim-fixed incl. broadcast / manual floor", paired(with_broadcast, times[FLOOR])),
        (
            "policy_state=... / shim-fixed incl. broadcast",
            paired(times[WITH_STATE], with_broadcast),
        ),
        ("policy_state=... / buggy add", paired(times[WITH_STATE], times[BUGGY])),
    ]
    if SHIM_WITH_STATE in times:
        references.append(
            (
                "shim policy_state=... / shim-fixed",
                paired(times[SHIM_WITH_STATE], times[SHIM_FIXED]),
            )
        )
    for name, value in references:
        print(f"    {name:<46} {value:6.2f}")
    return met_all


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--snapshots", type=int, default=100)
    parser.add_argument("--workers", type=int, nargs="+", default=[2, 4])
    parser.add_argument("--hidden", type=int, nargs="+", default=[512, 512])
    args = parser.parse_args()
    ray.init(
        num_cpus=max(args.workers) * len(PATTERNS) + 2,
        include_dashboard=False,
        log_to_driver=False,
        configure_logging=False,
        object_store_memory=4 * 1024**3,
    )
    print(
        f"Ray {ray.__version__}, PPO (torch, legacy stack), hidden={args.hidden}, "
        f"{os.cpu_count()} CPU cores"
    )
    met = True
    for workers in sorted(args.workers, reverse=True):
        # The stretch pattern only at the fewest workers: at W=4 six leagues of 100 snapshots
        # (30 processes) need more than the 24 GiB this machine has.
        labels = [
            label for label in PATTERNS if label != SHIM_WITH_STATE or workers == min(args.workers)
        ]
        times = run(workers, args.snapshots, args.hidden, labels)
        print(f"  W={workers}: small and large leagues side by side", file=sys.stderr, flush=True)
        times.update(
            small_vs_large(workers, args.snapshots, args.hidden, league_edge(args.snapshots))
        )
        met &= report(workers, args.snapshots, times)
    ray.shutdown()
    print("\nall targets met" if met else "\nsome targets MISSED")
    return 0 if met else 1


if __name__ == "__main__":
    sys.exit(main())
