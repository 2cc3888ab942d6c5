"""What a snapshot costs with the fix, delivery included, beside RLlib's buggy add.

Two processes, side by side on one Ray cluster, take turns (the order alternates every round):
one runs RLlib alone (``RLLIB_ADDPOLICY_FIX=0``) and times the seed script's snapshot,
``add_policy`` and ``set_weights`` on the driver, whose remote copies stay wrong; the other times
the same code with the fix plus ``sync(algo)`` right after, the delivery that makes every remote
copy right. The floor is the buggy add itself: one remote build per worker. Target: with the
fix <= 1.05x. Ratios are medians, over the rounds, of the ratio within a round.

Remote workers run without the shim in both (the kill switch in the job's runtime
environment): the fix works by what the driver sends.

    python benchmarks/snapshot_round_trips.py [--snapshots 40] [--workers 2 4]
        [--hidden 256 256]
"""

from __future__ import annotations

import argparse
import os
import statistics
import subprocess
import sys
import time

KILL_SWITCH = {"RLLIB_ADDPOLICY_FIX": "0"}


def serve(workers: int, hidden: list[int]) -> None:
    """A child: build a league, then time one snapshot per line read from stdin."""
    import ray

    import rllib_addpolicy_fix as fix
    from rllib_addpolicy_fix import demo

    shim = fix.is_installed()
    ray.init(
        address=os.environ["RAY_ADDRESS"],
        log_to_driver=False,
        configure_logging=False,
        runtime_env={"env_vars": KILL_SWITCH},
    )
    algo = demo.build_league(
        workers, hidden=tuple(hidden), train_batch_size=100 * workers, policy_map_capacity=100
    )
    algo.train()
    print("ready", flush=True)
    for n, _ in enumerate(sys.stdin, start=1):
        started = time.perf_counter()
        demo.copy_weights(algo, f"main_v{n}")
        if shim:
            fix.sync(algo)
        print(f"{(time.perf_counter() - started) * 1000.0:.3f}", flush=True)
    if shim:
        print(f"consistent {fix.verify(algo).consistent}", flush=True)
    algo.stop()


def measure(workers: int, args: argparse.Namespace) -> dict[str, list[float]]:
    command = [sys.executable, __file__, "--child", "--workers", str(workers), "--hidden"]
    command += [str(width) for width in args.hidden]
    children = {}
    for label, extra in (("fix", {}), ("RLlib alone", KILL_SWITCH)):
        children[label] = subprocess.Popen(
            command,
            env=dict(os.environ, **extra),
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            text=True,
        )
    for child in children.values():
        while child.stdout is not None and child.stdout.readline().strip() != "ready":
            pass
    times: dict[str, list[float]] = {label: [] for label in children}
    for n in range(args.snapshots):
        order = list(children) if n % 2 == 0 else list(reversed(children))
        for label in order:
            child = children[label]
            assert child.stdin is not None and child.stdout is not None
            child.stdin.write("add\n")
            child.stdin.flush()
            times[label].append(float(child.stdout.readline()))
    for label, child in children.items():
        assert child.stdin is not None and child.stdout is not None
        child.stdin.close()
        tail = child.stdout.read().strip()
        if tail:
            print(f"  {label}: {tail}")
        child.wait()
    return times


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--snapshots", type=int, default=40)
    parser.add_argument("--workers", type=int, nargs="+", default=[2, 4])
    parser.add_argument("--hidden", type=int, nargs="+", default=[256, 256])
    parser.add_argument("--child", action="store_true", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child:
        serve(args.workers[0], args.hidden)
        return
    import ray

    ray.init(num_cpus=2 * max(args.workers) + 4, include_dashboard=False)
    os.environ["RAY_ADDRESS"] = ray.get_runtime_context().gcs_address
    print("| W | RLlib alone, ms | fix incl. delivery, ms | ratio (target <= 1.05) |")
    print("|---|---|---|---|")
    for workers in args.workers:
        times = measure(workers, args)
        buggy, fixed = times["RLlib alone"], times["fix"]
        ratio = statistics.median(f / b for f, b in zip(fixed, buggy))
        print(
            f"| {workers} | {statistics.median(buggy):.1f} | {statistics.median(fixed):.1f} | "
            f"{ratio:.3f} |",
            flush=True,
        )
    ray.shutdown()


if __name__ == "__main__":
    main()
