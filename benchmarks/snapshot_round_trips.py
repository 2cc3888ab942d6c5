"""What a snapshot costs with the fix, delivery included, beside RLlib's buggy add.

Three processes, side by side on one Ray cluster, take turns (the order rotates every round):

- "RLlib alone" (``RLLIB_ADDPOLICY_FIX=0``) times the seed script's snapshot, ``add_policy`` and
  ``set_weights`` on the driver, whose remote copies stay wrong;
- "fix" times the same code with the fix plus ``sync(algo)`` right after, the delivery that
  makes every remote copy right;
- "RLlib carrying the state" (also ``RLLIB_ADDPOLICY_FIX=0``) is the round trip the fix aims at,
  done by RLlib itself: one ``add_policy(..., policy_state=...)`` whose state is the one the
  driver's copy ends up with (main's weights, a fresh optimizer), so every worker builds once at
  driver weights.

The target: the fix <= 1.05x the buggy add. The third column shows what carrying the state
costs by itself, with no shim involved. Ratios are medians, over the rounds, of the ratio
within a round.

Remote workers run without the shim in all three (the kill switch in the job's runtime
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
from typing import Any

KILL_SWITCH = {"RLLIB_ADDPOLICY_FIX": "0"}
CARRIED = "RLlib carrying the state"


def carry_state(algo: Any, dst_policy_name: str) -> None:
    """RLlib's own one-round-trip snapshot: the add carries the state the copy ends up with."""
    src = algo.get_policy("main")
    state = src.get_state()
    state.pop("_optimizer_variables", None)  # a fresh copy has a fresh optimizer
    algo.add_policy(
        dst_policy_name,
        type(src),
        observation_space=src.observation_space,
        action_space=src.action_space,
        config=getattr(src, "config", {}).copy(),
        policy_state=state,
    )


def ratio(over: list[float], under: list[float]) -> float:
    """The median, over the rounds, of the ratio within a round."""
    return statistics.median(o / u for o, u in zip(over, under))


def serve(workers: int, hidden: list[int], carry: bool) -> None:
    """A child: build a league, then time one snapshot per line read from stdin."""
    import ray

    import rllib_addpolicy_fix as fix
    from rllib_addpolicy_fix.tools import demo

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
        if carry:
            carry_state(algo, f"main_v{n}")
        else:
            demo.copy_weights(algo, f"main_v{n}")
        if shim:
            fix.sync(algo)
        print(f"{(time.perf_counter() - started) * 1000.0:.3f}", flush=True)
    if shim or carry:  # RLlib alone's buggy copies differ, as measured in the README
        checks = fix.verify(algo).checks
        equal = sum(check.status == "equal" for check in checks)
        print(f"remote copies equal to the driver: {equal} of {len(checks)}", flush=True)
    algo.stop()


def measure(workers: int, args: argparse.Namespace) -> dict[str, list[float]]:
    command = [sys.executable, __file__, "--child", "--workers", str(workers), "--hidden"]
    command += [str(width) for width in args.hidden]
    children = {}
    for label, extra, flags in (
        ("fix", {}, []),
        ("RLlib alone", KILL_SWITCH, []),
        (CARRIED, KILL_SWITCH, ["--carry-state"]),
    ):
        children[label] = subprocess.Popen(
            command + flags,
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
        labels = list(children)
        order = labels[n % len(labels) :] + labels[: n % len(labels)]
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
    parser.add_argument("--carry-state", action="store_true", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child:
        serve(args.workers[0], args.hidden, args.carry_state)
        return
    import ray

    ray.init(num_cpus=2 * max(args.workers) + 4, include_dashboard=False)
    os.environ["RAY_ADDRESS"] = ray.get_runtime_context().gcs_address
    print(
        "| W | RLlib alone, ms | fix incl. delivery, ms | RLlib carrying the state, ms "
        "| fix / RLlib alone (target <= 1.05) | carrying / RLlib alone | fix / carrying |"
    )
    print("|---|---|---|---|---|---|---|")
    for workers in args.workers:
        times = measure(workers, args)
        buggy, fixed, carried = times["RLlib alone"], times["fix"], times[CARRIED]
        print(
            f"| {workers} | {statistics.median(buggy):.1f} | {statistics.median(fixed):.1f} | "
            f"{statistics.median(carried):.1f} | {ratio(fixed, buggy):.3f} | "
            f"{ratio(carried, buggy):.3f} | {ratio(fixed, carried):.3f} |",
            flush=True,
        )
    ray.shutdown()


if __name__ == "__main__":
    main()
