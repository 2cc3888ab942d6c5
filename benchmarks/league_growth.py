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

    python benchmarks/league_growth.py [--snapshots 100] [--workers 2 4] [--hidden 512 512]
"""

from __future__ import annotations

import argparse
import os
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


SHIM_FIXED = "shim: buggy add (seed code unedited)"
BUGGY = "buggy add + driver set_weights"
WITH_STATE = "add(policy_state=main.get_state())"
FLOOR = "add + set_weights + sync_weights([pid])"

#: label -> (add function, shim installed?)
PATTERNS: dict[str, tuple[Callable[[Any, str], None], bool]] = {
    BUGGY: (copy_weights, False),
    WITH_STATE: (with_state, False),
    FLOOR: (copy_then_sync_one, False),
    "RLlib example: set_state + sync all": (rllib_example, False),
    SHIM_FIXED: (copy_weights, True),
    "shim: add(policy_state=...)": (with_state, True),
}


def build(workers: int, hidden: list[int], capacity: int) -> Any:
    # RLlib wants the train batch to be a multiple of workers x rollout fragment (20).
    return demo.build_league(workers, hidden=tuple(hidden), train_batch_size=100 * workers,
                             policy_map_capacity=capacity)


def run(workers: int, snapshots: int, hidden: list[int]) -> dict[str, list[float]]:
    fix.install()
    algos = {label: build(workers, hidden, snapshots + 10) for label in PATTERNS}
    for algo in algos.values():
        algo.train()
    times: dict[str, list[float]] = {label: [] for label in PATTERNS}
    broadcast_ms: dict[str, list[float]] = {label: [] for label in PATTERNS if PATTERNS[label][1]}
    labels = list(PATTERNS)
    for index in range(snapshots):
        rotation = labels[index % len(labels):] + labels[:index % len(labels)]
        for label in rotation:
            add, shim = PATTERNS[label]
            fix.install() if shim else fix.uninstall()
            if shim:  # untimed: uninstall() drops the shim's tensor cache; steady use keeps it
                _tracking.record_for(_compat.training_group(algos[label])).pending()
            started = time.perf_counter()
            add(algos[label], f"main_v{index}")
            times[label].append((time.perf_counter() - started) * 1000.0)
            if shim:
                broadcast_ms[label].append(fix.sync(algos[label]).seconds * 1000.0)
        if (index + 1) % 10 == 0:
            print(f"  W={workers}: {index + 1}/{snapshots} snapshots", file=sys.stderr, flush=True)
    fix.install()
    for label, algo in algos.items():
        report = fix.verify(algo, [f"main_v{snapshots - 1}"])
        times[label + " correct"] = [float(report.consistent)]
        if PATTERNS[label][1]:
            times[label + " broadcast"] = broadcast_ms[label]
            record = _tracking.record_for(_compat.training_group(algo))
            times[label + " bytes"] = [record.lifetime.bytes_broadcast / snapshots]
            weights = algo.get_policy("main").get_weights().values()
            times["one policy bytes"] = [float(sum(w.nbytes for w in weights))]
        algo.stop()
    return times


def report(workers: int, snapshots: int, times: dict[str, list[float]]) -> bool:
    """Print the table and every target with its ratio; True when all targets hold."""
    edge = 10 if snapshots >= 20 else max(snapshots // 2, 1)

    def first_last(series: list[float]) -> tuple[float, float]:
        return statistics.median(series[:edge]), statistics.median(series[-edge:])

    print(f"\nW={workers} remote workers, N={snapshots} snapshots; ms per add, median of the "
          f"first {edge} -> the last {edge} adds")
    print(f"  {'pattern':<44} {'first':>7}    {'last':>7}   remote correct")
    mean: dict[str, float] = {}
    for label, (_, shim) in PATTERNS.items():
        first, last = first_last(times[label])
        mean[label] = (first + last) / 2
        correct = "yes" if times[label + " correct"][0] else "NO"
        print(f"  {label:<44} {first:7.1f} -> {last:7.1f}   {correct}")
        if shim:
            b_first, b_last = first_last(times[label + " broadcast"])
            print(f"  {'  + its broadcast before the next sample':<44} {b_first:7.1f} -> "
                  f"{b_last:7.1f}")
            mean[label + " incl. broadcast"] = mean[label] + (b_first + b_last) / 2
    shim_first, shim_last = first_last(times[SHIM_FIXED])
    targets = [
        ("shim-fixed / buggy add", mean[SHIM_FIXED] / mean[BUGGY], "<=", 1.10),
        (f"shim-fixed last {edge} / first {edge}", shim_last / shim_first, "<=", 1.10),
        ("policy_state=... / shim-fixed", mean[WITH_STATE] / mean[SHIM_FIXED], ">=", 2.0),
        ("bytes per refresh / (W x one policy)", times[SHIM_FIXED + " bytes"][0]
         / (workers * times["one policy bytes"][0]), "<=", 1.05),
    ]
    print("  targets")
    met_all = True
    for name, value, sense, goal in targets:
        met = value <= goal if sense == "<=" else value >= goal
        met_all &= met
        print(f"    {name:<42} {value:6.2f}  (target {sense} {goal:.2f}: "
              f"{'met' if met else 'MISSED'})")
    buggy_first, buggy_last = first_last(times[BUGGY])
    print("  for reference (not targets)")
    for name, value in [
        ("shim-fixed growth / buggy add's own growth", (shim_last / shim_first)
         / (buggy_last / buggy_first)),
        ("shim-fixed incl. broadcast / buggy add", mean[SHIM_FIXED + " incl. broadcast"]
         / mean[BUGGY]),
        ("shim-fixed incl. broadcast / manual floor", mean[SHIM_FIXED + " incl. broadcast"]
         / mean[FLOOR]),
        ("policy_state=... / shim-fixed incl. broadcast", mean[WITH_STATE]
         / mean[SHIM_FIXED + " incl. broadcast"]),
        ("shim policy_state=... / shim-fixed", mean["shim: add(policy_state=...)"]
         / mean[SHIM_FIXED]),
    ]:
        print(f"    {name:<46} {value:6.2f}")
    return met_all


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--snapshots", type=int, default=100)
    parser.add_argument("--workers", type=int, nargs="+", default=[2, 4])
    parser.add_argument("--hidden", type=int, nargs="+", default=[512, 512])
    args = parser.parse_args()
    ray.init(num_cpus=max(args.workers) * len(PATTERNS) + 2, include_dashboard=False,
             log_to_driver=False, configure_logging=False)
    print(f"Ray {ray.__version__}, PPO (torch, legacy stack), hidden={args.hidden}, "
          f"{os.cpu_count()} CPU cores")
    met = True
    for workers in args.workers:
        met &= report(workers, args.snapshots, run(workers, args.snapshots, args.hidden))
    ray.shutdown()
    print("\nall targets met" if met else "\nsome targets MISSED")
    return 0 if met else 1


if __name__ == "__main__":
    sys.exit(main())
