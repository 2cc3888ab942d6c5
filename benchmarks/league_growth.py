"""Cost of adding a snapshot as the league grows: the bug, the manual fixes, and the shim.

One algorithm per pattern (so each league grows on its own), all built up front and measured
interleaved, one add per pattern per round in rotating order, so machine noise hits every pattern
alike. The shim-fixed pattern's cost includes the broadcast the shim makes before the next sample
(``rllib_addpolicy_fix.sync``), so all patterns are compared at "remote workers correct".

    python benchmarks/league_growth.py [--snapshots 100] [--workers 2 4] [--hidden 512 512]
"""

from __future__ import annotations

import argparse
import statistics
import sys
import time
from collections.abc import Callable
from typing import Any

import ray

import rllib_addpolicy_fix as fix
from rllib_addpolicy_fix import _compat, _tracking, demo


def copy_weights(algo: Any, dst: str) -> None:
    """The seed's buggy pattern: add, then set the weights on the driver."""
    src = algo.get_policy("main")
    algo.add_policy(dst, type(src), observation_space=src.observation_space,
                    action_space=src.action_space, config=getattr(src, "config", {}).copy())
    algo.get_policy(dst).set_weights(src.get_weights())


def with_state(algo: Any, dst: str) -> None:
    src = algo.get_policy("main")
    algo.add_policy(dst, type(src), observation_space=src.observation_space,
                    action_space=src.action_space, config=src.config.copy(),
                    policy_state=src.get_state())


def copy_then_sync_one(algo: Any, dst: str) -> None:
    copy_weights(algo, dst)
    _compat.training_group(algo).sync_weights(policies=[dst], timeout_seconds=None)


def rllib_example(algo: Any, dst: str) -> None:
    """RLlib's self-play example: add, set_state, then a blocking sync of every policy."""
    src = algo.get_policy("main")
    new = algo.add_policy(dst, type(src), observation_space=src.observation_space,
                          action_space=src.action_space, config=src.config.copy())
    new.set_state(src.get_state())
    _compat.training_group(algo).sync_weights(timeout_seconds=None)


def shim_fixed(algo: Any, dst: str) -> None:
    copy_weights(algo, dst)
    fix.sync(algo)  # what the shim does before the next sample anyway


def shim_with_state(algo: Any, dst: str) -> None:
    with_state(algo, dst)
    fix.sync(algo)


#: label -> (add function, shim installed?)
PATTERNS: dict[str, tuple[Callable[[Any, str], None], bool]] = {
    "buggy add + driver set_weights": (copy_weights, False),
    "add(policy_state=main.get_state())": (with_state, False),
    "add + set_weights + sync_weights([pid])": (copy_then_sync_one, False),
    "RLlib example: set_state + sync all": (rllib_example, False),
    "shim: buggy add (+ its broadcast)": (shim_fixed, True),
    "shim: add(policy_state=...)": (shim_with_state, True),
}


def build(workers: int, hidden: list[int], capacity: int) -> Any:
    return demo.build_league(workers, hidden=tuple(hidden), policy_map_capacity=capacity)


def run(workers: int, snapshots: int, hidden: list[int]) -> dict[str, list[float]]:
    algos = {label: build(workers, hidden, snapshots + 10) for label in PATTERNS}
    times: dict[str, list[float]] = {label: [] for label in PATTERNS}
    labels = list(PATTERNS)
    for index in range(snapshots):
        rotation = labels[index % len(labels):] + labels[:index % len(labels)]
        for label in rotation:
            add, shim = PATTERNS[label]
            fix.install() if shim else fix.uninstall()
            started = time.perf_counter()
            add(algos[label], f"main_v{index}")
            times[label].append((time.perf_counter() - started) * 1000.0)
        if (index + 1) % 10 == 0:
            print(f"  W={workers}: {index + 1}/{snapshots} snapshots", file=sys.stderr, flush=True)
    fix.install()
    for label, algo in algos.items():
        report = fix.verify(algo, [f"main_v{snapshots - 1}"])
        times[label + " correct"] = [float(report.consistent)]
        if PATTERNS[label][1]:
            record = _tracking.record_for(_compat.training_group(algo))
            times[label + " bytes"] = [record.lifetime.bytes_broadcast / snapshots]
            weights = algo.get_policy("main").get_weights().values()
            times["one policy bytes"] = [float(sum(w.nbytes for w in weights))]
        algo.stop()
    return times


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--snapshots", type=int, default=100)
    parser.add_argument("--workers", type=int, nargs="+", default=[2, 4])
    parser.add_argument("--hidden", type=int, nargs="+", default=[512, 512])
    args = parser.parse_args()
    ray.init(num_cpus=max(args.workers) * len(PATTERNS) + 2, include_dashboard=False,
             log_to_driver=False, configure_logging=False)
    first = last = 10 if args.snapshots >= 20 else max(args.snapshots // 2, 1)
    outcome = 0
    for workers in args.workers:
        times = run(workers, args.snapshots, args.hidden)
        print(f"\nW={workers} remote workers, N={args.snapshots} snapshots, hidden={args.hidden}, "
              f"Ray {ray.__version__}; ms per add (median of first {first} -> last {last})")
        med: dict[str, tuple[float, float]] = {}
        for label in PATTERNS:
            series = times[label]
            med[label] = (statistics.median(series[:first]), statistics.median(series[-last:]))
            correct = "yes" if times[label + " correct"][0] else "NO"
            print(f"  {label:<42} {med[label][0]:7.1f} -> {med[label][1]:7.1f}   "
                  f"remote correct: {correct}")
        buggy = sum(med["buggy add + driver set_weights"]) / 2
        shim = sum(med["shim: buggy add (+ its broadcast)"]) / 2
        state = sum(med["add(policy_state=main.get_state())"]) / 2
        targets = [
            ("shim-fixed / buggy add", shim / buggy, "<= 1.10", shim / buggy <= 1.10),
            (f"shim-fixed last {last} / first {first}",
             med["shim: buggy add (+ its broadcast)"][1] / med["shim: buggy add (+ its broadcast)"][0],
             "<= 1.10", med["shim: buggy add (+ its broadcast)"][1]
             <= 1.10 * med["shim: buggy add (+ its broadcast)"][0]),
            ("policy_state=... / shim-fixed", state / shim, ">= 2.0", state / shim >= 2.0),
        ]
        for name, value, goal, met in targets:
            print(f"  target {name:<32} {value:6.2f}  ({goal}: {'met' if met else 'MISSED'})")
            outcome |= 0 if met else 1
        sent = times["shim: buggy add (+ its broadcast)" + " bytes"][0]
        one_policy = times["one policy bytes"][0]
        print(f"  bytes the shim broadcast per snapshot: {sent / 1e6:.2f} MB = "
              f"{sent / one_policy:.2f} x one policy's weights ({workers} workers)")
    ray.shutdown()
    return outcome


if __name__ == "__main__":
    sys.exit(main())
