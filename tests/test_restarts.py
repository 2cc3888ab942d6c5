"""A remote worker whose process Ray restarted between RLlib's calls (it died while the driver
learned, say) is a new, empty worker that RLlib still calls healthy: it must get the league
back (policies added at run time and config-defined ones, at the driver's weights) before it
samples or evaluates again. RLlib alone never restores it. The oldest and the newest tested Ray
(Ray restarts RLlib's worker actors on both)."""

from __future__ import annotations

import logging
from typing import Any

import pytest

import helpers
import ray_compat
import rllib_addpolicy_fix as fix
from rllib_addpolicy_fix import _compat
from rllib_addpolicy_fix.syncing import transport as _transport

pytestmark = [pytest.mark.timeout(300), ray_compat.at_the_ends]


def league(build: Any, **config: Any) -> Any:
    """A league in sync: the config's slot "frozen" refreshed in place on the driver, and a
    snapshot "main_v1" added by the documented copy."""
    algo = build(
        ray_compat.enable_worker_restarts(
            helpers.ppo_config(policies=("main", "frozen"), callbacks=helpers.SampleProbe, **config)
        )
    )
    algo.train()
    algo.set_weights({"frozen": helpers.perturbed(algo.get_policy("main").get_weights(), 0.5)})
    helpers.copy_weights(algo, "main_v1")
    algo.train()
    return algo


def sampled_on(group: Any, worker_id: int) -> list[dict[str, str]]:
    """What ``worker_id``'s policies held whenever its present process sampled."""
    return dict(_transport.foreach_remote(group, helpers.probe_samples))[worker_id]


def expect_league_sampled(shim: Any, algo: Any, seen: list[dict[str, str]], ids: list[str]) -> None:
    """With the shim, the restarted worker sampled with every policy at the driver's weights;
    RLlib alone, with some policy missing or at other weights."""
    assert seen, "the restarted worker did not sample"
    expected = {pid: helpers.digest(algo.get_policy(pid).get_weights()) for pid in ids}
    right = [all(sample.get(pid) == digest for pid, digest in expected.items()) for sample in seen]
    if shim.active:
        assert all(right), f"{right.count(False)} of {len(right)} samples without the league"
    else:
        assert not any(right), "RLlib alone should have sampled without the league"


def test_a_training_worker_restarted_behind_rllibs_back_gets_the_league_before_it_samples(
    shim: Any, build: Any, caplog: pytest.LogCaptureFixture
) -> None:
    algo = league(build)
    group = _compat.training_group(algo)
    helpers.copy_weights(algo, "main_v2")  # held: its remote half goes out at the next use
    restarted = ray_compat.restart_behind_rllibs_back(group)

    report = fix.verify(algo, ["main_v1", "frozen"])
    restarted_checks = [c for c in report.checks if c.worker == str(restarted)]
    if shim.active:  # neither equal nor unreachable: restarted, restored before it samples
        assert [(c.policy_id, c.status) for c in restarted_checks] == [("*", "restarted")]
        assert report.consistent, str(report)
    else:
        assert {c.status for c in restarted_checks} <= {"missing", "differs"}, str(report)
        assert not report.consistent, str(report)

    caplog.set_level(logging.WARNING, logger="rllib_addpolicy_fix")
    algo.train()  # ("main" is trained after sampling: the workers sampled the one before)
    expect_league_sampled(
        shim, algo, sampled_on(group, restarted), ["frozen", "main_v1", "main_v2"]
    )
    if shim.active:
        (warning,) = [
            r.getMessage() for r in caplog.records if "behind RLlib's back" in r.getMessage()
        ]
        assert f"[{restarted}]" in warning and "main_v2" in warning, warning
        shim.expect(fix.verify(algo))


def test_an_evaluation_worker_restarted_behind_rllibs_back_gets_the_league_before_it_evaluates(
    shim: Any, build: Any
) -> None:
    algo = league(build, evaluation_workers=1)
    evaluation = _compat.evaluation_group(algo)
    restarted = ray_compat.restart_behind_rllibs_back(evaluation)

    algo.train()  # trains, then evaluates with what it trained
    expect_league_sampled(
        shim, algo, sampled_on(evaluation, restarted), ["main", "frozen", "main_v1"]
    )
