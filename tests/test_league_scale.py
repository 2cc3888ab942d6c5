"""Leagues larger than RLlib's policy cache: adds cost the same at any league size, and every
snapshot, cached or stashed, still matches the driver on every remote worker."""

from __future__ import annotations

import contextlib
from typing import Any

import pytest

import comparisons
import helpers
import ray_compat
import rllib_addpolicy_fix as fix
from rllib_addpolicy_fix import _compat

#: RLlib's add path (the remote add closure, the on_create_policy loop, the LRU policy map) is
#: the same code from 2.5.1 to 2.60.0: the ends of the range, with RLlib alone on the newest.
pytestmark = ray_compat.at_the_ends

CAPACITY = 3
SNAPSHOTS = 6  # twice the cache: the later adds each stash one policy in every process


def _control_on_newest_only(shim: Any) -> None:
    if not shim.active and ray_compat.RUNNING != ray_compat.NEWEST:
        pytest.skip("RLlib alone is shown on the newest tested Ray")


def _league_past_the_cache(build: Any) -> tuple[Any, list[str]]:
    algo = build(
        helpers.ppo_config(callbacks=helpers.CountsCreatedPolicies, policy_map_capacity=CAPACITY)
    )
    algo.train()
    return algo, [f"main_v{i}" for i in range(1, SNAPSHOTS + 1)]


def _processes(algo: Any) -> list[dict[str, Any]]:
    """The counters of the driver's worker, then of each remote worker."""
    group = _compat.training_group(algo)
    return [helpers.counters()] + helpers.remote_results(algo, helpers.counters, group)


def _start_counting(algo: Any) -> None:
    """Count from here in every process. The remote workers of this test session have the
    shim installed (Ray copies a worker's methods into its actor class, so it cannot be
    uninstalled there): the driver is where RLlib alone is seen; the benchmark
    ``league_scale.py`` runs remote workers without the shim."""
    helpers.count_rebuilds()
    helpers.remote_results(algo, helpers.count_rebuilds)


def test_on_create_policy_runs_once_per_new_policy_in_every_process(shim: Any, build: Any) -> None:
    _control_on_newest_only(shim)
    algo, snapshots = _league_past_the_cache(build)
    _start_counting(algo)
    for policy_id in snapshots:
        helpers.copy_weights(algo, policy_id)
    fix.verify(algo)  # the remote workers have every snapshot now (with or without the shim)
    created = [process["created"] for process in _processes(algo)]
    assert len(created) == 1 + _compat.num_remote_workers(_compat.training_group(algo))
    if shim.active:
        # As RLlib documents: the new policy, once, in the driver and each remote worker.
        assert created == [snapshots] * len(created), created
    else:  # RLlib calls it for every policy in the map on each add, stashed ones loaded
        assert len(created[0]) > 2 * len(snapshots), created


def test_adds_past_the_policy_cache_rebuild_nothing_from_the_stash(shim: Any, build: Any) -> None:
    _control_on_newest_only(shim)
    algo, snapshots = _league_past_the_cache(build)
    _start_counting(algo)
    for policy_id in snapshots[:CAPACITY]:
        helpers.copy_weights(algo, policy_id)
    fix.verify(algo)
    helpers.count_rebuilds()
    helpers.remote_results(algo, helpers.count_rebuilds)
    for policy_id in snapshots[CAPACITY:]:  # each of these stashes one policy in each process
        helpers.copy_weights(algo, policy_id)
    fix.verify(algo)
    rebuilt = [process["rebuilt"] for process in _processes(algo)]
    assert len(rebuilt) == 1 + _compat.num_remote_workers(_compat.training_group(algo))
    if shim.active:
        assert rebuilt == [0] * len(rebuilt), rebuilt
    else:
        assert rebuilt[0] >= len(snapshots[CAPACITY:]), rebuilt


def test_a_stashed_snapshot_changed_on_the_driver_reaches_every_worker(
    shim: Any, build: Any
) -> None:
    _control_on_newest_only(shim)
    algo, snapshots = _league_past_the_cache(build)
    for policy_id in snapshots:
        helpers.copy_weights(algo, policy_id)
    fix.verify(algo)  # every worker holds every snapshot
    oldest = snapshots[0]  # long evicted from every process's cache
    policy = algo.get_policy(oldest)
    policy.set_weights(helpers.perturbed(policy.get_weights(), by=0.5))
    for policy_id in snapshots[-CAPACITY:]:  # evict it again on the driver
        algo.get_policy(policy_id)
    _start_counting(algo)
    algo.train()
    report = fix.verify(algo)
    shim.expect(report, oldest)
    if shim.active:
        assert report.consistent, str(report)
        # Sampling loads "main", which the adds evicted; the stashed snapshot took its new
        # weights in the stash, and verify() read the stash: neither loaded a policy.
        rebuilt = [process["rebuilt"] for process in _processes(algo)[1:]]
        assert rebuilt == [1] * _compat.num_remote_workers(_compat.training_group(algo)), rebuilt


def test_a_policy_only_remote_workers_fail_to_build_is_undone_everywhere_at_next_use(
    shim: Any, build: Any
) -> None:
    _control_on_newest_only(shim)
    config = helpers.ppo_config()
    if not shim.active:  # RLlib alone would restart the workers its add killed, for a minute
        config = _compat.without_worker_restarts(config)
    algo = build(config)
    main = algo.get_policy("main")
    add = dict(observation_space=main.observation_space, action_space=main.action_space)
    if shim.active:
        algo.add_policy("driver_only", helpers.BuildsOnTheDriverOnly, **add)  # built here
        with pytest.raises(fix.RemoteAddError, match="driver_only"):
            algo.train()  # the first use of the remote workers
    else:  # RLlib's remote add kills the workers (restarted or raised, by release and config)
        with contextlib.suppress(Exception):
            algo.add_policy("driver_only", helpers.BuildsOnTheDriverOnly, **add)
    on_driver = "driver_only" in helpers.policy_ids_of(
        _compat.local_worker(_compat.training_group(algo))
    )
    if shim.active:
        held = helpers.remote_results(algo, helpers.policy_ids_of)
        workers = _compat.num_remote_workers(_compat.training_group(algo))
        assert ["driver_only" in ids for ids in held] == [False] * workers, "workers kept alive"
        assert not on_driver, "nothing half-added: the driver must not keep what workers lack"
        algo.train()  # training goes on without it
        comparisons.expect_consistent(fix.verify(algo))
    else:
        assert on_driver, "RLlib alone leaves the policy on the driver only"


def test_evaluate_past_the_policy_cache_rebuilds_no_stashed_snapshot(shim: Any, build: Any) -> None:
    _control_on_newest_only(shim)
    algo = build(
        helpers.ppo_config(
            evaluation_workers=1,
            callbacks=helpers.CountsCreatedPolicies,
            policy_map_capacity=CAPACITY,
        )
    )
    algo.train()
    for policy_id in [f"main_v{i}" for i in range(1, SNAPSHOTS + 1)]:
        helpers.copy_weights(algo, policy_id)
    algo.train()  # trains and evaluates: both sets hold every snapshot from here
    evaluation = _compat.evaluation_group(algo)
    helpers.count_rebuilds()
    helpers.remote_results(algo, helpers.count_rebuilds, evaluation)
    algo.evaluate()  # RLlib syncs the evaluation set from the training driver first
    rebuilt = [helpers.counters()["rebuilt"]] + [
        process["rebuilt"] for process in helpers.remote_results(algo, helpers.counters, evaluation)
    ]
    assert len(rebuilt) == 1 + _compat.num_remote_workers(evaluation)
    if shim.active:  # only what changed since the last evaluation ("main") was read and sent
        assert rebuilt == [0] * len(rebuilt), rebuilt
        comparisons.expect_consistent(fix.verify(algo))
    else:  # RLlib reads and sets every policy: each stashed one is loaded, in every process
        assert min(rebuilt) >= SNAPSHOTS + 1 - CAPACITY, rebuilt
