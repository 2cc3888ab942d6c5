"""Evaluation workers: policies only the evaluation set has, and ``verify()`` telling a bug from
a difference that is pending or lagging by design. Newest tested Ray (adding to the evaluation
set alone needs 2.40+)."""

from __future__ import annotations

import functools
from typing import Any

import pytest

import helpers
import ray_compat
import rllib_addpolicy_fix as fix
from rllib_addpolicy_fix import _compat

pytestmark = [
    pytest.mark.timeout(300),
    ray_compat.newest_only,
]


def statuses(report: fix.ConsistencyReport, policy_id: str) -> dict[str, set[str]]:
    found: dict[str, set[str]] = {}
    for check in report.checks:
        if check.policy_id == policy_id:
            found.setdefault(check.group, set()).add(check.status)
    return found


def test_a_policy_only_the_evaluation_set_has_reaches_its_workers_after_a_driver_side_change(
    shim: Any, build: Any
) -> None:
    algo = build(helpers.ppo_config(evaluation_workers=1, callbacks=helpers.SampleProbe))
    algo.train()
    main = algo.get_policy("main")
    kwargs = ray_compat.add_to_one_set_kwargs("evaluation")
    assert kwargs is not None
    algo.add_policy(
        "scout",
        type(main),
        observation_space=main.observation_space,
        action_space=main.action_space,
        config=main.config.copy(),
        **kwargs,
    )
    scout = _compat.local_worker(_compat.evaluation_group(algo)).policy_map["scout"]
    if shim.active:  # verify() uses the workers: the add reaches them first
        assert statuses(fix.verify(algo), "scout") == {"evaluation": {"equal"}}
    scout.set_weights(main.get_weights())  # the driver-side copy, where the set keeps it

    if shim.active:  # pending, not a bug, and compared with the set's own driver copy
        report = fix.verify(algo)
        assert statuses(report, "scout") == {"evaluation": {"pending"}}, str(report)
        assert report.consistent, str(report)
    evaluation = _compat.evaluation_group(algo)
    counts = helpers.sample_count(algo, evaluation)
    algo.train()  # evaluates: the shim sends it before the evaluation workers sample
    seen = helpers.samples_since(algo, counts, group=evaluation)
    helpers.expect_sampled_with(shim, seen, "scout", helpers.digest(scout.get_weights()))
    shim.expect(fix.verify(algo, ["scout"]), "scout")

    if shim.active:  # and sync() sends it on demand
        scout.set_weights(helpers.perturbed(main.get_weights(), 0.5))
        assert fix.sync(algo).sent == {"training": [], "evaluation": ["scout"]}
        shim.expect(fix.verify(algo, ["scout"]), "scout")


def test_verify_fails_only_on_diverged_copies_not_on_pending_or_lagging_ones(
    shim: Any, build: Any
) -> None:
    algo = build(helpers.ppo_config(evaluation_workers=1))
    algo.train()
    helpers.copy_weights(algo, "snap1")
    fix.verify(algo)  # with the shim, the add reaches both sets' workers first
    snap1 = algo.get_policy("snap1")
    snap1.set_weights(helpers.perturbed(snap1.get_weights(), 0.25))  # pending on both sets
    main = algo.get_policy("main")
    main.set_weights(helpers.perturbed(main.get_weights(), 0.25))  # as if trained again

    report = fix.verify(algo)
    if shim.active:
        assert statuses(report, "snap1") == {"training": {"pending"}, "evaluation": {"pending"}}
        # main: sent before the training workers sample; on evaluation workers RLlib syncs it
        # at the next evaluate().
        assert statuses(report, "main") == {"training": {"pending"}, "evaluation": {"lagging"}}
        assert fix.assert_consistent(algo) is not None
        fix.assert_consistent(algo, send_pending=True)
        assert statuses(fix.verify(algo), "snap1") == {
            "training": {"equal"},
            "evaluation": {"equal"},
        }
    else:
        with pytest.raises(fix.InconsistentWeightsError):
            fix.assert_consistent(algo, send_pending=True)

    # A copy that changed on a worker, not on the driver, is a bug whatever else is going on.
    helpers.remote_results(
        algo, functools.partial(helpers.add_to_weights, policy_id="snap1", by=1.0)
    )
    with pytest.raises(fix.InconsistentWeightsError) as raised:
        fix.assert_consistent(algo, send_pending=True)
    assert {c.status for c in raised.value.report.diverged} == {"differs"}
