"""A league grown far past RLlib's policy cache: does snapshot 1,000 cost what snapshot 10 did?

For each network size, one process grows a league with the shim and one with RLlib alone
(``RLLIB_ADDPOLICY_FIX=0``), one after the other in the same run. Each adds snapshots by the
seed script's pattern (``add_policy``, then ``set_weights`` on the driver; with the shim also
``sync(algo)``, so each add is timed with its delivery), trains one iteration every
``--train-every`` adds, and "main" plays the newest snapshot (the mapping function each add
passes). RLlib alone rebuilds every stashed policy on every add, so its league stops at a time
cap, which the table says.

Remote workers run without the shim in both processes (the job's runtime environment sets the
kill switch for them): the fix must not depend on it being installed there.

Printed per network and process: median add ms of the first 10 adds, of the first 10 past the
cache, which each also stash one policy in every process: RLlib's own cost) and of the
last 10, and the ratios (target <= 1.2 with the shim), ``train()`` seconds at the end vs at
N=100, median of 3 each (target <= 1.1),
resident memory growth per 100 snapshots of the driver and a remote worker beside the bytes of
100 snapshot states (what RLlib's stash holds for them), and policies rebuilt from the stash
per add (``Policy.from_state``, target 0).

    python benchmarks/league_scale.py [--snapshots 1000] [--capacity 100] [--workers 2]
        [--hidden 64 64 --hidden 256 256] [--train-every 50] [--cap-s 240]
"""

from __future__ import annotations

import argparse
import functools
import json
import os
import statistics
import subprocess
import sys
import time
from typing import Any

KILL_SWITCH = {"RLLIB_ADDPOLICY_FIX": "0"}


def face_newest(agent_id: Any, *args: Any, newest: str = "main", **kwargs: Any) -> str:
    """player_0 is "main"; player_1 plays the newest snapshot (no import of the package on the
    workers, which run without the shim here)."""
    return "main" if agent_id == "player_0" else newest


def count_rebuilds(worker: Any = None) -> int:
    """Count ``Policy.from_state`` calls in this process from now on; returns the count."""
    from ray.rllib.policy.policy import Policy

    if not hasattr(Policy, "_benchmark_rebuilds"):
        rebuild = Policy.from_state

        def counted(*args: Any, **kwargs: Any) -> Any:
            Policy._benchmark_rebuilds += 1
            return rebuild(*args, **kwargs)

        Policy._benchmark_rebuilds = 0
        Policy.from_state = staticmethod(counted)
    return int(Policy._benchmark_rebuilds)


def rss_mib(worker: Any = None) -> float:
    with open("/proc/self/status") as status:
        for line in status:
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) / 1024.0
    return float("nan")


def snapshot(algo: Any, policy_id: str) -> None:
    """The seed script's copy, facing the new snapshot from now on."""
    from rllib_addpolicy_fix.tools import demo

    demo.copy_weights(
        algo, policy_id, policy_mapping_fn=functools.partial(face_newest, newest=policy_id)
    )


def grow(args: argparse.Namespace) -> dict[str, Any]:
    """One league, in this process; returns its figures."""
    import ray
    import ray.cloudpickle

    import rllib_addpolicy_fix as fix
    from rllib_addpolicy_fix import _compat
    from rllib_addpolicy_fix.syncing import transport as _transport
    from rllib_addpolicy_fix.tools import demo

    shim = fix.is_installed()
    ray.cloudpickle.register_pickle_by_value(sys.modules[__name__])
    ray.init(
        num_cpus=args.workers + 2,
        include_dashboard=False,
        log_to_driver=False,
        configure_logging=False,
        runtime_env={"env_vars": KILL_SWITCH},
    )
    config = demo.league_config(
        args.workers,
        hidden=tuple(args.hidden),
        train_batch_size=100 * args.workers,
        policy_map_capacity=args.capacity,
    ).multi_agent(policy_mapping_fn=face_newest)
    algo = config.build()
    group = _compat.training_group(algo)

    def processes(func: Any) -> list[Any]:
        return [func()] + [result for _, result in _transport.foreach_remote(group, func)]

    algo.train()
    state_bytes = sum(
        getattr(leaf, "nbytes", 0) for leaf in _leaves(algo.get_policy("main").get_state())
    )
    add_ms: list[float] = []
    train_s: dict[int, float] = {}
    rss: dict[int, list[float]] = {0: processes(rss_mib)}
    rebuilt_in_adds = [0] * (args.workers + 1)
    before = processes(count_rebuilds)
    started = time.perf_counter()
    capped = False
    for n in range(1, args.snapshots + 1):
        tick = time.perf_counter()
        snapshot(algo, f"main_v{n}")
        if shim:
            fix.sync(algo)
        add_ms.append((time.perf_counter() - tick) * 1000.0)
        capped = not shim and time.perf_counter() - started > args.cap_s
        if n % args.train_every == 0 or n == args.snapshots or capped:
            after = processes(count_rebuilds)
            rebuilt_in_adds = [r + a - b for r, a, b in zip(rebuilt_in_adds, after, before)]
            repeats = 3 if n in (100, args.snapshots) or capped else 1  # the ratio's two
            timings = []
            for _ in range(repeats):
                tick = time.perf_counter()
                algo.train()
                timings.append(time.perf_counter() - tick)
            train_s[n] = statistics.median(timings)
            before = processes(count_rebuilds)
            if n % 100 == 0:
                rss[n] = processes(rss_mib)
            print(
                f"  [{'shim' if shim else 'RLlib alone'} {args.hidden}] N={n}: add "
                f"{add_ms[-1]:.0f} ms, train {train_s[n]:.2f} s, "
                f"{time.perf_counter() - started:.0f} s",
                file=sys.stderr,
                flush=True,
            )
        if capped:
            break
    verified = fix.verify(algo).consistent if shim else None
    algo.stop()
    ray.shutdown()
    return {
        "shim": shim,
        "snapshots": len(add_ms),
        "capped": capped,
        "add_ms": add_ms,
        "train_s": {str(n): s for n, s in train_s.items()},
        "rss": {str(n): values for n, values in rss.items()},
        "rebuilt_per_add": [count / max(len(add_ms), 1) for count in rebuilt_in_adds],
        "state_bytes": state_bytes,
        "verified": verified,
    }


def _leaves(tree: Any) -> Any:
    if isinstance(tree, dict):
        for value in tree.values():
            yield from _leaves(value)
    elif isinstance(tree, (list, tuple)):
        for value in tree:
            yield from _leaves(value)
    else:
        yield tree


def run_child(args: argparse.Namespace, hidden: list[int], shim: bool) -> dict[str, Any]:
    command = [
        sys.executable,
        __file__,
        "--child",
        "--snapshots", str(args.snapshots),
        "--capacity", str(args.capacity),
        "--workers", str(args.workers),
        "--train-every", str(args.train_every),
        "--cap-s", str(args.cap_s),
        "--hidden", *map(str, hidden),
    ]  # fmt: skip
    env = dict(os.environ, **({} if shim else KILL_SWITCH))
    done = subprocess.run(command, env=env, stdout=subprocess.PIPE, text=True, check=True)
    return dict(json.loads(done.stdout.strip().splitlines()[-1]))


def report(hidden: list[int], results: list[dict[str, Any]], args: argparse.Namespace) -> None:
    print(f"\n## {'x'.join(map(str, hidden))} net, W={args.workers}, capacity {args.capacity}")
    print(
        "| process | snapshots | add ms first 10 | first 10 past the cache | last 10 | last/first "
        "| last/past the cache | train() s at N=100 "
        "| at end | end/100 | RSS MiB per 100 snapshots: driver, worker | rebuilt per add "
        "(driver, workers) |"
    )
    print("|---|---|---|---|---|---|---|---|---|---|---|---|")
    for result in results:
        adds, n = result["add_ms"], result["snapshots"]
        first, last = statistics.median(adds[:10]), statistics.median(adds[-10:])
        # The first adds past the cache: from here each add also stashes one policy in every
        # process (RLlib's own cost, the same at any league size).
        cap = args.capacity
        past = statistics.median(adds[cap : cap + 10]) if n >= cap + 20 else float("nan")
        trains = {int(k): v for k, v in result["train_s"].items()}
        at_100, at_end = trains.get(100), trains.get(max(trains)) if trains else None
        rss = {int(k): v for k, v in result["rss"].items()}
        growth = "n/a"
        if 100 in rss and max(rss) > 100:
            end = max(rss)
            per = [(b - a) * 100 / (end - 100) for a, b in zip(rss[100], rss[end])]
            growth = f"{per[0]:.1f}, {statistics.mean(per[1:]):.1f}"
        label = "shim" if result["shim"] else "RLlib alone"
        stop = f"{n} (stopped at the {args.cap_s:g} s cap)" if result["capped"] else str(n)
        ratio = f"{at_end / at_100:.2f}" if at_100 and at_end else "n/a"
        rebuilt = ", ".join(f"{value:.2f}" for value in result["rebuilt_per_add"])
        print(
            f"| {label} | {stop} | {first:.1f} | {past:.1f} | {last:.1f} | {last / first:.2f} | "
            f"{last / past:.2f} | "
            f"{at_100 if at_100 is None else f'{at_100:.2f}'} | "
            f"{at_end if at_end is None else f'{at_end:.2f}'} | {ratio} | {growth} | {rebuilt} |"
        )
    state_mib = results[0]["state_bytes"] * 100 / 2**20
    print(f"\n100 snapshot states (what RLlib stashes for them, per process): {state_mib:.1f} MiB")
    for result in results:
        if result["verified"] is not None:
            print(f"every snapshot equal on every remote worker at the end: {result['verified']}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--snapshots", type=int, default=1000)
    parser.add_argument("--capacity", type=int, default=100)
    parser.add_argument("--workers", type=int, default=2)
    parser.add_argument("--hidden", type=int, nargs="+", action="append")
    parser.add_argument("--train-every", type=int, default=50)
    parser.add_argument("--cap-s", type=float, default=240.0, help="RLlib alone stops after this")
    parser.add_argument("--child", action="store_true", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child:
        args.hidden = args.hidden[0]
        print(json.dumps(grow(args)))
        return
    for hidden in args.hidden or [[64, 64], [256, 256]]:
        results = [run_child(args, hidden, shim) for shim in (True, False)]
        report(hidden, results, args)


if __name__ == "__main__":
    main()
