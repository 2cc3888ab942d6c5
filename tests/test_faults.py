"""Issue 5: worker restarts (every tested Ray where RLlib's own restart works) and checkpoint
round trips (oldest and newest)."""

from __future__ import annotations

import time
from typing import Any

import pytest

import helpers
import rllib_addpolicy_fix as fix
from rllib_addpolicy_fix import _compat, _tracking

OLDEST_AND_NEWEST = pytest.mark.skipif(
    str(_compat.installed_ray_version()) not in (_compat.TESTED_RAY[0], _compat.TESTED_RAY[-1]),
    reason="runs on the oldest and the newest tested Ray",
)


def train_until_restored(algo: Any, expected: dict[str, int], deadline_s: float = 120.0) -> None:
    """Train until every set has its full number of healthy remote workers again."""
    started = time.monotonic()
    while True:
        algo.train()
        healthy = {role: group.num_healthy_remote_workers()
                   for role, group in _compat.groups(algo).items()}
        if healthy == expected:
            return
        assert time.monotonic() - started < deadline_s, f"not restored: {healthy}"


def remote_workers_checked(report: fix.ConsistencyReport) -> dict[str, int]:
    checked: dict[str, set[str]] = {}
    for check in report.checks:
        if check.worker != "local":  # the evaluation set's driver-side worker
            checked.setdefault(check.group, set()).add(check.worker)
    return {role: len(workers) for role, workers in checked.items()}


#: On these releases RLlib restarts a failed worker as the same Ray actor, and the restarted
#: PPO worker then dies in RLlib's own GAE post-processing ("operands could not be broadcast
#: together with shapes (10,) (9,)"), with or without the shim, so RLlib never restores it.
RESTARTED_WORKERS_CRASH_IN_RLLIB = ("2.10.0", "2.30.0")


@pytest.mark.timeout(420)
@pytest.mark.skipif(str(_compat.installed_ray_version()) in RESTARTED_WORKERS_CRASH_IN_RLLIB,
                    reason="RLlib's restarted PPO worker crashes in its own GAE post-processing")
def test_restarted_workers_hold_every_snapshot_at_driver_weights(shim: Any, build: Any) -> None:
    import ray

    # Two evaluation workers: with the only one down, 2.30 falls back to (failing) local evaluation.
    algo = build(_compat.enable_worker_restarts(helpers.ppo_config(evaluation_workers=2)))
    expected = {role: _compat.num_remote_workers(group)
                for role, group in _compat.groups(algo).items()}
    algo.train()
    helpers.copy_weights(algo, "snap1")
    algo.train()

    for group in _compat.groups(algo).values():  # one training and one evaluation worker die
        ray.kill(min(_compat.remote_actors(group).items())[1], no_restart=False)
    helpers.copy_weights(algo, "snap2")  # added while they are down
    train_until_restored(algo, expected)
    helpers.copy_weights(algo, "snap3")  # the league goes on
    algo.train()

    report = fix.verify(algo)
    assert {c.policy_id for c in report.checks} >= {"snap1", "snap2", "snap3"}
    assert remote_workers_checked(report) == expected
    shim.expect(report)


@OLDEST_AND_NEWEST
@pytest.mark.timeout(300)
def test_checkpoint_round_trip_keeps_the_league_consistent(
    shim: Any, build: Any, tmp_path: Any
) -> None:
    from ray.rllib.algorithms.algorithm import Algorithm

    algo = build(helpers.ppo_config())
    algo.train()
    helpers.copy_weights(algo, "snap1")
    algo.train()
    helpers.copy_weights(algo, "snap2")
    algo.get_policy("snap1").set_weights(algo.get_policy("main").get_weights())  # refreshed
    saved = algo.save(str(tmp_path))
    algo.stop()

    restored = Algorithm.from_checkpoint(_compat.checkpoint_path(saved))
    try:
        # RLlib restores every worker from the checkpoint; the shim must keep that intact and
        # must not re-send the restored league on the next iteration.
        assert fix.verify(restored).consistent, str(fix.verify(restored))
        assert {"snap1", "snap2"} <= set(_compat.policy_ids(
            _compat.local_worker(_compat.training_group(restored))))
        result = restored.train()
        if shim.active:
            assert _tracking.sent_in_last_result(restored) == [], result[fix.RESULT_KEY]

        helpers.copy_weights(restored, "snap3")  # new snapshots still reach the workers
        restored.train()
        shim.expect(fix.verify(restored), "snap3")
    finally:
        restored.stop()
