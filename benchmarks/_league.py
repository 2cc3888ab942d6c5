"""What several benchmarks share: a local Ray sized for the run, and a league of N snapshots
added with RLlib's own state-carrying ``add_policy`` (delivered, so nothing is pending)."""

from __future__ import annotations

import argparse
import statistics
import time
from collections.abc import Callable, Iterator
from typing import Any

import ray

from rllib_addpolicy_fix.tools import demo


def league_arguments(description: str) -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(description=description)
    parser.add_argument("--snapshots", type=int, default=100)
    parser.add_argument("--iterations", type=int, default=40, help="timed, per mode")
    parser.add_argument("--block", type=int, default=5, help="iterations per mode in a row")
    parser.add_argument("--workers", type=int, default=2)
    parser.add_argument("--hidden", type=int, nargs="+", default=[512, 512])
    return parser


def alternating_blocks(args: argparse.Namespace) -> Iterator[bool]:
    """Per block of ``args.block`` iterations, whether the measured mode is on: off, on, on,
    off, off, on, ... so that machine noise and drift hit both modes alike."""
    for block in range(2 * max(args.iterations // args.block, 1)):
        yield block % 4 in (1, 2)


def median_seconds(func: Callable[[], Any], repeats: int = 200) -> float:
    """``func`` timed alone: the median of ``repeats`` calls, in seconds."""
    times = []
    for _ in range(repeats):
        started = time.perf_counter()
        func()
        times.append(time.perf_counter() - started)
    return statistics.median(times)


def start_ray(workers: int) -> None:
    ray.init(
        num_cpus=workers + 2, include_dashboard=False, log_to_driver=False, configure_logging=False
    )


def add_snapshots(algo: Any, count: int) -> None:
    """``count`` snapshots of "main", each added with main's state (one round trip each)."""
    main = algo.get_policy("main")
    for index in range(count):
        algo.add_policy(
            f"main_v{index}",
            type(main),
            observation_space=main.observation_space,
            action_space=main.action_space,
            config=main.config.copy(),
            policy_state=main.get_state(),
        )


def league(args: argparse.Namespace) -> Any:
    """A started league of ``args.snapshots`` snapshots, trained once (nothing pending)."""
    algo = demo.build_league(
        args.workers,
        hidden=tuple(args.hidden),
        train_batch_size=400,
        policy_map_capacity=args.snapshots + 10,
    )
    add_snapshots(algo, args.snapshots)
    algo.train()
    return algo
