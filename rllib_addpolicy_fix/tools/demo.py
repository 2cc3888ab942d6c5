"""``python -m rllib_addpolicy_fix demo``: a self-play league, once without the shim, once with.

Every few iterations "main" is snapshotted with the seed script's ``copy_weights()`` (add the
policy, then ``set_weights`` on the driver); after the next ``train()`` each remote worker's copy
of the snapshot is compared with the driver's.
"""

from __future__ import annotations

import argparse
import logging
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any

from .. import _compat
from ..patching.install import install, is_installed, uninstall
from ..syncing.broadcast import sync
from ..syncing.tracking import RESULT_KEY
from . import game
from .verify import verify


def copy_weights(algo: Any, dst_policy_name: str, **add_options: Any) -> None:
    """The seed script's snapshot function, unedited (``add_options``, e.g. a new
    ``policy_mapping_fn``, go to ``add_policy``)."""
    src = algo.get_policy("main")
    algo.add_policy(
        dst_policy_name,
        type(src),
        observation_space=src.observation_space,
        action_space=src.action_space,
        config=getattr(src, "config", {}).copy(),
        **add_options,
    )
    algo.get_policy(dst_policy_name).set_weights(src.get_weights())


@dataclass
class PhaseOutcome:
    label: str
    snapshots: int = 0
    diverged: int = 0  # snapshot copies on remote workers that differ from the driver
    copies: int = 0
    max_abs_diff: float = 0.0
    seconds: float = 0.0
    lines: list[str] = field(default_factory=list)


def build_league(num_workers: int, **options: Any) -> Any:
    """PPO (legacy stack, torch) on the shipped game: "main" trains against league snapshots;
    ``options`` are :func:`league_config`'s."""
    return league_config(num_workers, **options).build()


def league_config(
    num_workers: int,
    *,
    hidden: tuple[int, ...] = (32, 32),
    train_batch_size: int = 200,
    policy_map_capacity: int = 100,
) -> Any:
    """The league's config (a Tune trial builds it itself)."""
    from ray.rllib.algorithms.ppo import PPOConfig
    from ray.rllib.policy.policy import PolicySpec

    config = (
        PPOConfig()
        .environment(game.RockPaperScissors)
        .multi_agent(
            policies={"main": PolicySpec(None, game.OBSERVATION_SPACE, game.ACTION_SPACE, {})},
            policy_mapping_fn=game.league_mapping,
            policies_to_train=["main"],
            policy_map_capacity=policy_map_capacity,
        )
        .debugging(seed=0, log_level="ERROR")
    )
    config = _compat.configure_old_stack(
        config, num_workers=num_workers, hidden=hidden, train_batch_size=train_batch_size
    )
    # Restartable workers make Ray's core print a warning of its own; the demo needs none.
    return _compat.without_worker_restarts(config)


def run_phase(label: str, args: argparse.Namespace) -> PhaseOutcome:
    outcome = PhaseOutcome(label)
    started = time.perf_counter()
    print(f"\n=== {label}: building PPO with {args.workers} remote workers ...", flush=True)
    algo = build_league(args.workers)
    league: list[str] = []
    pending: str | None = None
    try:
        for iteration in range(1, args.iterations + 1):
            result = algo.train()
            reward = _main_reward(result)
            print(
                f"[{label}] iteration {iteration}/{args.iterations}  reward(main)={reward:+.2f}"
                f"  league={len(league)}  ({time.perf_counter() - started:.0f} s)"
                + _audit_line(result),
                flush=True,
            )
            if pending is not None:
                _report_snapshot(algo, pending, outcome)
                pending = None
            if iteration % args.snapshot_every == 0 and iteration < args.iterations:
                pending = f"main_v{len(league) + 1}"
                copy_weights(algo, pending)
                league.append(pending)
    finally:
        algo.stop()
    outcome.seconds = time.perf_counter() - started
    return outcome


def _audit_line(result: dict[str, Any]) -> str:
    """What the remote workers sampled the snapshots with, from the fix's audit in the result
    (nothing without the fix)."""
    figures = result.get(RESULT_KEY)
    if not isinstance(figures, dict) or "training_sampled_batches" not in figures:
        return ""
    return (
        f"  audit: {figures['training_sampled_batches']} snapshot batches sampled, "
        f"{figures['training_stale_batches']} stale, {figures['training_caught_up']} caught up"
    )


def _main_reward(result: dict[str, Any]) -> float:
    for path in (
        ("env_runners", "policy_reward_mean", "main"),
        ("policy_reward_mean", "main"),
        ("sampler_results", "policy_reward_mean", "main"),
    ):
        node: Any = result
        for key in path:
            node = node.get(key) if isinstance(node, dict) else None
        if isinstance(node, (int, float)):
            return float(node)
    return float("nan")


def _report_snapshot(algo: Any, policy_id: str, outcome: PhaseOutcome) -> None:
    report = verify(algo, [policy_id])
    cells = []
    for check in report.checks:
        outcome.copies += 1
        if check.status == "equal":
            cells.append(f"worker {check.worker}: matches")
        else:
            outcome.diverged += 1
            outcome.max_abs_diff = max(outcome.max_abs_diff, check.max_abs_diff)
            cells.append(f"worker {check.worker}: max |dw| = {check.max_abs_diff:.3f}")
    outcome.snapshots += 1
    mark = "OK " if all(c.status == "equal" for c in report.checks) else "BAD"
    line = f"  [{mark}] snapshot {policy_id}: " + ", ".join(cells)
    outcome.lines.append(line)
    print(line, flush=True)


def main(args: argparse.Namespace) -> int:
    import ray

    logging.getLogger("ray").setLevel(logging.ERROR)
    ray.init(
        address=args.address,
        include_dashboard=False,
        log_to_driver=False,
        configure_logging=False,
        **({} if args.address else {"num_cpus": args.workers + 1}),
    )
    ray.cloudpickle.register_pickle_by_value(game)  # cluster nodes need no copy of the package
    try:
        uninstall()
        without = run_phase("shim off", args)
        if not install():
            print("rllib_addpolicy_fix could not be activated here (see the warning above).")
            return 2
        with_shim = run_phase("shim on", args)
    finally:
        install()
        ray.shutdown()
    print("\n=== verdict")
    for outcome in (without, with_shim):
        print(
            f"{outcome.label:>9}: {outcome.diverged} of {outcome.copies} remote snapshot copies "
            f"differ from the driver (max |dw| = {outcome.max_abs_diff:.3f}), "
            f"{outcome.seconds:.0f} s"
        )
    fixed = with_shim.copies > 0 and with_shim.diverged == 0
    shown = without.diverged > 0
    if fixed:
        print(
            "FIXED: with the shim every remote worker plays against the driver's snapshots"
            + ("" if shown else " (this Ray did not show the bug without the shim)")
            + "."
        )
    else:
        print("NOT FIXED: remote workers still differ from the driver with the shim active.")
    return 0 if fixed else 1


@dataclass
class SoakCycle:
    index: int
    consistent: bool
    league: list[str]
    rss_bytes: int
    #: The ``verify`` report ``consistent`` was read from.
    report: Any = None


def soak(
    algo: Any, cycles: int, *, league_size: int = 4, train_every: int = 10
) -> Iterator[SoakCycle]:
    """Add / refresh / remove cycles on a running league, yielding a :class:`SoakCycle` each:
    a snapshot of "main" is added, the oldest live one is refreshed in place, and once the
    league is full the oldest is removed. Every ``train_every`` cycles the league trains;
    otherwise, with the shim installed, :func:`sync` stands in for the broadcast the next
    ``train()`` would make."""
    import gc

    import psutil

    process = psutil.Process()
    league: list[str] = []
    for index in range(cycles):
        snapshot = f"soak_{index}"
        copy_weights(algo, snapshot)
        league.append(snapshot)
        algo.get_policy(league[0]).set_weights(algo.get_policy("main").get_weights())
        if len(league) > league_size:
            algo.remove_policy(league.pop(0))
        if (index + 1) % train_every == 0:
            algo.train()
        elif is_installed():
            sync(algo)
        gc.collect()
        report = verify(algo)
        yield SoakCycle(index, report.consistent, list(league), process.memory_info().rss, report)
