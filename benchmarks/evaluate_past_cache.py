"""What ``evaluate()`` costs once the league outgrew RLlib's policy cache, with and without the fix.

RLlib's evaluation-set sync reads every policy on the training driver and sets every one on the
evaluation set's driver-side worker and on each evaluation worker, so each stashed snapshot is
rebuilt (``Policy.from_state``) in every one of those processes, at every evaluation. With the
fix that sync carries only what changed since the last one (the trained policies and snapshots
changed on the driver); the rest are there already, at driver weights.

Two processes on one Ray cluster, each with a league of ``--snapshots`` past a cache of
``--capacity``, take turns calling ``evaluate()`` (the order alternates every round): one with
the fix, one with RLlib alone (``RLLIB_ADDPOLICY_FIX=0``). Every agent plays "main", so sampling
itself loads no snapshot. Printed: median ``evaluate()`` ms, the ratio (median over rounds of the
ratio within a round) and the policies rebuilt from the stash per ``evaluate()`` on the driver
and on the evaluation workers. Remote workers run without the shim in both.

    python benchmarks/evaluate_past_cache.py [--snapshots 60] [--capacity 20] [--rounds 10]
        [--hidden 64 64]
"""

from __future__ import annotations

import argparse
import os
import statistics
import subprocess
import sys
import time
from typing import Any

from league_scale import KILL_SWITCH, count_rebuilds  # this folder: run as a script


def everyone_plays_main(agent_id: Any, *args: Any, **kwargs: Any) -> str:
    return "main"


def serve(args: argparse.Namespace) -> None:
    """A child: grow a league, then time one ``evaluate()`` per line read from stdin."""
    import ray
    import ray.cloudpickle

    import rllib_addpolicy_fix as fix
    from rllib_addpolicy_fix import _compat
    from rllib_addpolicy_fix.syncing import transport as _transport
    from rllib_addpolicy_fix.tools import demo

    shim = fix.is_installed()
    import league_scale

    for module in (sys.modules[__name__], league_scale):  # the workers lack these scripts
        ray.cloudpickle.register_pickle_by_value(module)
    ray.init(
        address=os.environ["RAY_ADDRESS"],
        log_to_driver=False,
        configure_logging=False,
        runtime_env={"env_vars": KILL_SWITCH},
    )
    config = demo.league_config(
        2, hidden=tuple(args.hidden), train_batch_size=200, policy_map_capacity=args.capacity
    ).multi_agent(policy_mapping_fn=everyone_plays_main)
    algo = _compat.configure_old_stack(config, num_workers=2, evaluation_workers=2).build()
    evaluation = _compat.evaluation_group(algo)
    for n in range(1, args.snapshots + 1):
        demo.copy_weights(algo, f"main_v{n}")
    algo.train()  # trains and evaluates: both sets hold the whole league from here
    print("ready", flush=True)
    for _ in sys.stdin:
        algo.train()  # "main" changes, as between two evaluations of a real run
        before = [count_rebuilds()] + [
            r for _, r in _transport.foreach_remote(evaluation, count_rebuilds)
        ]
        started = time.perf_counter()
        algo.evaluate()
        elapsed_ms = (time.perf_counter() - started) * 1000.0
        after = [count_rebuilds()] + [
            r for _, r in _transport.foreach_remote(evaluation, count_rebuilds)
        ]
        rebuilt = [a - b for a, b in zip(after, before)]
        print(f"{elapsed_ms:.3f} {rebuilt[0]} {sum(rebuilt[1:])}", flush=True)
    if shim:
        print(f"consistent {fix.verify(algo).consistent}", flush=True)
    algo.stop()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--snapshots", type=int, default=60)
    parser.add_argument("--capacity", type=int, default=20)
    parser.add_argument("--rounds", type=int, default=10)
    parser.add_argument("--hidden", type=int, nargs="+", default=[64, 64])
    parser.add_argument("--child", action="store_true", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child:
        serve(args)
        return
    import ray

    ray.init(num_cpus=14, include_dashboard=False)
    command = [sys.executable, __file__, "--child", "--snapshots", str(args.snapshots)]
    command += ["--capacity", str(args.capacity), "--hidden", *map(str, args.hidden)]
    environment = dict(os.environ, RAY_ADDRESS=ray.get_runtime_context().gcs_address)
    children = {
        label: subprocess.Popen(
            command,
            env=dict(environment, **extra),
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            text=True,
        )
        for label, extra in (("fix", {}), ("RLlib alone", KILL_SWITCH))
    }
    for child in children.values():
        while child.stdout is not None and child.stdout.readline().strip() != "ready":
            pass
    rounds: dict[str, list[list[float]]] = {label: [] for label in children}
    for n in range(args.rounds):
        for label in list(children) if n % 2 == 0 else list(reversed(children)):
            child = children[label]
            assert child.stdin is not None and child.stdout is not None
            child.stdin.write("evaluate\n")
            child.stdin.flush()
            rounds[label].append([float(value) for value in child.stdout.readline().split()])
    for label, child in children.items():
        assert child.stdin is not None and child.stdout is not None
        child.stdin.close()
        tail = child.stdout.read().strip()
        if tail:
            print(f"  {label}: {tail}")
        child.wait()
    fixed, alone = rounds["fix"], rounds["RLlib alone"]
    ratio = statistics.median(f[0] / a[0] for f, a in zip(fixed, alone))
    print(
        f"league {args.snapshots} past a cache of {args.capacity}, net {args.hidden}, "
        "2 training + 2 evaluation workers"
    )
    print("| | evaluate() ms | rebuilt per evaluate(): driver | evaluation workers |")
    print("|---|---|---|---|")
    for label, figures in rounds.items():
        columns = [statistics.median(row[i] for row in figures) for i in range(3)]
        print(f"| {label} | {columns[0]:.1f} | {columns[1]:.0f} | {columns[2]:.0f} |")
    print(f"fix / RLlib alone: {ratio:.3f}")
    ray.shutdown()


if __name__ == "__main__":
    main()
