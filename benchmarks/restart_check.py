"""What finding workers Ray restarted behind RLlib's back adds to ``train()``.

One league of N snapshots and W remote workers, the shim installed throughout; blocks of
iterations alternate between the restart check on and off (off, on, on, off, ...), so noise
hits both alike. The check reads each remote worker's restart count from Ray's actor table
(no call to a worker), at the start of each iteration and around each of RLlib's restores:
what it costs per iteration does not grow with N, which the run shows by counting reads.
Target: <= 1 % of ``train()`` at N=100, W=2.

    python benchmarks/restart_check.py [--snapshots 100] [--iterations 40]
"""

from __future__ import annotations

import statistics
import sys
import time
from typing import Any

import ray
from _league import alternating_blocks, league, league_arguments, median_seconds, start_ray

from rllib_addpolicy_fix import _compat


def main() -> int:
    args = league_arguments(__doc__.splitlines()[0]).parse_args()
    start_ray(args.workers)
    algo = league(args)

    real_counts = _compat.restart_counts
    reads = [0]

    def counted(group: Any) -> dict[int, int]:
        reads[0] += 1
        return real_counts(group)

    def nothing_restarted(group: Any) -> dict[int, int]:
        return {}

    times: dict[bool, list[float]] = {True: [], False: []}
    reads_per_iteration: list[int] = []
    for check in alternating_blocks(args):
        _compat.restart_counts = counted if check else nothing_restarted  # type: ignore[assignment]
        algo.train()  # untimed
        for _ in range(args.block):
            before = reads[0]
            started = time.perf_counter()
            algo.train()
            times[check].append(time.perf_counter() - started)
            if check:
                reads_per_iteration.append(reads[0] - before)
    _compat.restart_counts = real_counts  # type: ignore[assignment]
    group = _compat.training_group(algo)
    one_read = median_seconds(lambda: real_counts(group))
    algo.stop()
    ray.shutdown()

    with_check, without = statistics.median(times[True]), statistics.median(times[False])
    overhead = with_check / without - 1.0
    per_iteration = statistics.median(reads_per_iteration) * one_read
    print(
        f"train() with N={args.snapshots} snapshots, W={args.workers}, nothing restarted, "
        f"{len(times[True])} iterations each, in alternating blocks of {args.block} "
        f"(Ray {ray.__version__})"
    )
    print(f"  restart check off: median {without * 1000:.1f} ms")
    print(f"  restart check on:  median {with_check * 1000:.1f} ms")
    verdict = "met" if overhead <= 0.01 else "MISSED"
    print(f"  overhead: {overhead * 100:+.2f} % (target <= 1 %: {verdict})")
    print(
        f"  the check timed alone: {statistics.median(reads_per_iteration)} reads of the set's "
        f"restart counts per iteration x {one_read * 1000:.2f} ms "
        f"({args.workers} GCS look-ups each) = {per_iteration * 1000:.2f} ms = "
        f"{per_iteration / without * 100:.2f} % of train()"
    )
    return 0 if overhead <= 0.01 else 1


if __name__ == "__main__":
    sys.exit(main())
