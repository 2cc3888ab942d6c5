"""The flows RLlib's own test suite runs for policies added at run time, in our words, with the
weights compared on every worker (RLlib's tests check which policies exist, not what they hold):
adding and removing under a two-policy cache, by class and by instance; restoring a league from a
checkpoint, whole and in part; a policy added in a callback, restored on a recovered worker."""

from __future__ import annotations

import tempfile
from typing import Any

import pytest
from test_faults import train_until_restored

import comparisons
import helpers
import ray_compat
import rllib_addpolicy_fix as fix
from rllib_addpolicy_fix import _compat

pytestmark = [
    pytest.mark.timeout(420),
    ray_compat.at_the_ends,
]


def add_by_class(algo: Any, policy_id: str) -> None:
    """The documented copy: build by class, then copy main's weights on the driver."""
    helpers.copy_weights(algo, policy_id)


def add_by_instance(algo: Any, policy_id: str) -> None:
    main = algo.get_policy("main")
    instance = type(main)(main.observation_space, main.action_space, dict(main.config))
    instance.set_weights(main.get_weights())
    algo.add_policy(policy_id, policy=instance)


def policy_sets(algo: Any) -> list[set[str]]:
    """The policy ids of every worker of every set, driver-side ones included."""
    sets = []
    for group in _compat.groups(algo).values():
        sets.append(set(_compat.policy_ids(_compat.local_worker(group))))
        sets += [set(ids) for ids in helpers.remote_results(algo, helpers.policy_ids_of, group)]
    return sets


def test_adds_and_removes_under_a_two_policy_cache_keep_every_copy_equal(
    shim: Any, build: Any
) -> None:
    algo = build(helpers.ppo_config(evaluation_workers=1, policy_map_capacity=2))
    algo.train()
    added = []
    for index in range(1, 5):
        policy_id = f"p{index}"
        (add_by_class if index % 2 else add_by_instance)(algo, policy_id)
        added.append(policy_id)
        algo.train()
    shim.expect(fix.verify(algo, added))

    for policy_id in added[:2]:
        algo.remove_policy(policy_id)
        algo.train()
    assert all(ids == {"main", *added[2:]} for ids in policy_sets(algo))
    add_by_class(algo, "p1")  # an id used before, re-added
    algo.train()
    shim.expect(fix.verify(algo, ["p1", *added[2:]]), "p1")


def test_league_restored_in_part_from_a_checkpoint_holds_the_saved_weights_everywhere(
    shim: Any, build: Any
) -> None:
    """``Algorithm.from_checkpoint(policy_ids=...)``, as RLlib's own test restores a league;
    the whole-league round trip is in test_faults."""
    from ray.rllib.algorithms.algorithm import Algorithm

    algo = build(helpers.ppo_config(evaluation_workers=1))
    algo.train()
    add_by_class(algo, "p1")
    add_by_instance(algo, "p2")
    algo.train()
    shim.expect(fix.verify(algo, ["p1", "p2"]), "p1")
    saved = {pid: helpers.digest(algo.get_policy(pid).get_weights()) for pid in ("p1", "p2")}

    with tempfile.TemporaryDirectory() as directory:
        path = ray_compat.checkpoint_path(algo.save(directory))
        restored = Algorithm.from_checkpoint(
            path,
            policy_ids=["main", "p1"],
            policy_mapping_fn=helpers.map_everyone_to_main,
            policies_to_train=["main"],
        )
    try:
        expected = {"main", "p1"}
        assert all(ids == expected for ids in policy_sets(restored))
        for pid in expected - {"main"}:
            assert helpers.digest(restored.get_policy(pid).get_weights()) == saved[pid]
        comparisons.expect_consistent(fix.verify(restored))
        restored.train()
        comparisons.expect_consistent(fix.verify(restored, sorted(expected - {"main"})))
    finally:
        restored.stop()


@pytest.mark.skipif(
    ray_compat.RESTARTED_PPO_WORKERS_CRASH,
    reason="RLlib's restarted PPO worker crashes in its own GAE post-processing",
)
def test_policy_added_in_a_callback_is_at_driver_weights_on_recovered_and_other_workers(
    shim: Any, build: Any
) -> None:
    config = helpers.ppo_config(num_workers=2, callbacks=helpers.AddsInOnAlgorithmInit)
    algo = build(ray_compat.enable_worker_restarts(config))
    group = _compat.training_group(algo)
    algo.train()
    recovered = str(min(ray_compat.remote_actors(group)))  # the worker that crashes
    ray_compat.crash_first_worker(group)
    train_until_restored(algo, {"training": _compat.num_remote_workers(group)})
    report = fix.verify(algo, ["from_callback"])
    assert len(report.checks) == _compat.num_remote_workers(group)
    on_recovered = [check for check in report.checks if check.worker == recovered]
    elsewhere = [check for check in report.checks if check.worker != recovered]
    # The recovered worker: RLlib restores it from the driver's state, right with or without
    # the shim (which must not break that). The worker that never failed: only the shim gave
    # it the callback's policy at the driver's weights.
    assert [(c.policy_id, c.status) for c in on_recovered] == [("from_callback", "equal")]
    shim.expect(fix.ConsistencyReport(tuple(elsewhere)), "from_callback")
