"""Issue 2 behaviours on a real local Ray: PPO (torch), remote RolloutWorkers, exact equality.

Every test that takes ``shim`` runs twice: installed (the behaviour holds) and uninstalled (RLlib's
own behaviour, where the same check must see the divergence).
"""

from __future__ import annotations

import contextlib
import functools
from collections.abc import Iterator
from typing import Any

import numpy as np
import pytest
import ray

import comparisons
import helpers
import rllib_addpolicy_fix as fix
from helpers import expect_sampled_with, remote_results, sample_count, samples_since
from rllib_addpolicy_fix import _compat
from rllib_addpolicy_fix.syncing import remote as _remote
from rllib_addpolicy_fix.syncing import tracking as _tracking
from rllib_addpolicy_fix.tools.game import ACTION_SPACE, OBSERVATION_SPACE

pytestmark = pytest.mark.timeout(300)


def training_group(algo: Any) -> Any:
    return _compat.training_group(algo)


@contextlib.contextmanager
def counting_puts(monkeypatch: pytest.MonkeyPatch) -> Iterator[list[int]]:
    """Counts real ``ray.put`` calls (the real function still runs)."""
    calls: list[int] = []
    real_put = ray.put

    def put(*args: Any, **kwargs: Any) -> Any:
        calls.append(1)
        return real_put(*args, **kwargs)

    with monkeypatch.context() as patch:
        patch.setattr(ray, "put", put)
        yield calls


def test_seed_copy_weights_reaches_remote_workers(shim: Any, build: Any) -> None:
    algo = build(helpers.ppo_config(num_workers=2, callbacks=helpers.SampleProbe))
    algo.train()
    driver = _compat.local_worker(training_group(algo))
    main_logits_at_snapshot = helpers.action_logits(driver, "main")

    helpers.copy_weights(algo, "main_v1")
    counts = sample_count(algo)
    algo.train()

    snapshot = helpers.digest(algo.get_policy("main_v1").get_weights())
    expect_sampled_with(shim, samples_since(algo, counts), "main_v1", snapshot)
    shim.expect(fix.verify(algo), "main_v1")
    remote_logits = remote_results(
        algo, functools.partial(helpers.action_logits, policy_id="main_v1")
    )
    same_distribution = [
        np.array_equal(logits, main_logits_at_snapshot) for logits in remote_logits
    ]
    assert all(same_distribution) if shim.active else not any(same_distribution)


def test_added_policy_matches_driver_at_the_workers_first_use_after_add(
    shim: Any, build: Any
) -> None:
    # verify() is that first use: an add's remote half goes out with the driver's state then.
    algo = build(helpers.ppo_config(evaluation_workers=1))
    policy_cls = type(algo.get_policy("main"))
    algo.add_policy(
        "fresh", policy_cls, observation_space=OBSERVATION_SPACE, action_space=ACTION_SPACE
    )
    report = fix.verify(algo, ["fresh"])
    shim.expect(report, "fresh")
    if shim.active:
        assert {check.group for check in report.checks} == {"training", "evaluation"}


def test_explicit_state_and_instance_adds_stay_correct_with_one_put_for_both(
    shim: Any, build: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    algo = build(helpers.ppo_config(num_workers=2))  # one put for both, not one per worker
    algo.train()
    main = algo.get_policy("main")
    with counting_puts(monkeypatch) as puts:
        algo.add_policy(
            "by_state",
            type(main),
            observation_space=OBSERVATION_SPACE,
            action_space=ACTION_SPACE,
            policy_state=main.get_state(),
        )
        instance = type(main)(OBSERVATION_SPACE, ACTION_SPACE, dict(main.config))
        instance.set_weights(main.get_weights())
        algo.add_policy("by_instance", policy=instance)
        report = fix.verify(algo, ["by_state", "by_instance"])
    # RLlib gets these right; the shim must not break them
    comparisons.expect_consistent(report)
    if shim.active:
        assert len(puts) == 1, "both adds' states go to the object store once, not per worker"
        figures = algo.train()[fix.RESULT_KEY]
        assert _tracking.sent_in_last_result(algo) == ["by_instance", "by_state"]
        assert (figures["broadcasts"], figures["policies_broadcast"]) == (1, 2), figures


@pytest.mark.parametrize("refresh", ["set_weights", "set_state"])
def test_in_place_refresh_reaches_workers_before_next_sample(
    shim: Any, build: Any, refresh: str
) -> None:
    algo = build(helpers.ppo_config(callbacks=helpers.SampleProbe))
    algo.train()
    helpers.copy_weights(algo, "snap")
    algo.train()
    algo.train()  # "main" moves on

    main, snap = algo.get_policy("main"), algo.get_policy("snap")
    if refresh == "set_weights":
        snap.set_weights(main.get_weights())
    else:
        snap.set_state(main.get_state())
    refreshed = helpers.digest(snap.get_weights())
    counts = sample_count(algo)
    algo.train()

    expect_sampled_with(shim, samples_since(algo, counts), "snap", refreshed)
    shim.expect(fix.verify(algo), "snap")


def test_algorithm_set_weights_reaches_remote_workers(shim: Any, build: Any) -> None:
    algo = build(helpers.ppo_config(callbacks=helpers.SampleProbe, policies=("main", "frozen")))
    algo.train()
    new_weights = {
        pid: {k: v + 0.25 for k, v in algo.get_policy(pid).get_weights().items()}
        for pid in ("main", "frozen")
    }
    algo.set_weights(new_weights)
    counts = sample_count(algo)
    algo.train()

    seen = samples_since(algo, counts)
    for pid in ("main", "frozen"):
        expect_sampled_with(shim, seen, pid, helpers.digest(new_weights[pid]))
    shim.expect(fix.verify(algo), "frozen")


def test_evaluation_workers_hold_driver_weights_after_add_and_at_evaluate(
    shim: Any, build: Any
) -> None:
    algo = build(helpers.ppo_config(evaluation_workers=1))
    algo.train()
    policy_cls = type(algo.get_policy("main"))
    algo.add_policy(
        "opponent", policy_cls, observation_space=OBSERVATION_SPACE, action_space=ACTION_SPACE
    )
    shim.expect(helpers.checks_of(fix.verify(algo, ["opponent"]), "evaluation"), "opponent")

    helpers.copy_weights(algo, "main_v1")
    algo.evaluate()  # RLlib's evaluate() re-sends every policy to the evaluation workers itself
    report = fix.verify(algo, ["main_v1", "opponent"])
    comparisons.expect_equal(helpers.checks_of(report, "evaluation"), ["main_v1", "opponent"])


def test_snapshot_added_in_on_train_result_is_consistent_next_iteration(
    shim: Any, build: Any
) -> None:
    algo = build(helpers.ppo_config(callbacks=helpers.SelfPlaySnapshots))
    algo.train()  # the callback adds "main_v1" with main's state, and no sync_weights()
    assert algo.get_policy("main_v1") is not None
    snapshot = helpers.digest(algo.get_policy("main_v1").get_weights())
    counts = sample_count(algo)
    algo.train()

    expect_sampled_with(shim, samples_since(algo, counts), "main_v1", snapshot)
    shim.expect(fix.verify(algo), "main_v1")


def test_broadcasts_are_targeted_and_skip_unchanged_iterations(
    shim: Any, build: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    algo = build(helpers.ppo_config(num_workers=2, callbacks=helpers.SampleProbe))
    algo.train()
    for index in range(3):
        helpers.copy_weights(algo, f"snap{index}")
    algo.train()
    first_sent = _tracking.sent_in_last_result(algo)
    idle = [algo.train(), algo.train()]

    algo.get_policy("snap1").set_weights(algo.get_policy("main").get_weights())
    refreshed = helpers.digest(algo.get_policy("snap1").get_weights())
    counts = sample_count(algo)
    after_refresh = algo.train()
    expect_sampled_with(shim, samples_since(algo, counts), "snap1", refreshed)
    shim.expect(fix.verify(algo), "snap1")
    if not shim.active:
        return

    assert first_sent == ["snap0", "snap1", "snap2"]
    assert [r[fix.RESULT_KEY]["policies_broadcast"] for r in idle] == [0, 0]
    figures = after_refresh[fix.RESULT_KEY]
    one_policy = sum(w.nbytes for w in algo.get_policy("snap1").get_weights().values())
    assert _tracking.sent_in_last_result(algo) == ["snap1"]
    assert figures["broadcasts"] == 1
    assert figures["bytes_broadcast"] == one_policy * _compat.num_remote_workers(
        training_group(algo)
    )

    # sync(): one put for the whole broadcast, and the workers hold the weights when it returns.
    algo.get_policy("snap2").set_state(algo.get_policy("main").get_state())
    with counting_puts(monkeypatch) as puts:
        summary = fix.sync(algo)
    assert summary.sent["training"] == ["snap2"]
    assert len(puts) == 1
    after_sync = fix.verify(algo, ["snap2"])
    assert [c.status for c in after_sync.checks] == ["equal"] * 2, str(after_sync)  # not pending

    # Nothing changed: one check of what is pending per iteration, not one before each of the
    # remote calls RLlib makes in it (about ten per PPO iteration).
    checks: list[str] = []
    real_pending = _tracking.GroupRecord.pending

    def pending(record: _tracking.GroupRecord) -> list[str]:
        checks.append(_compat.group_role(record.group))
        return real_pending(record)

    monkeypatch.setattr(_tracking.GroupRecord, "pending", pending)
    algo.train()
    assert checks == ["training"], checks


def test_shim_code_on_remote_workers_reports_errors_instead_of_raising(build: Any) -> None:
    algo = build(helpers.ppo_config())
    group = training_group(algo)
    healthy = group.num_healthy_remote_workers()
    bad = {"main": {"no_such_layer": np.zeros(3, np.float32)}, "no_such_policy": {}}
    apply_bad = functools.partial(_remote.set_policy_weights, weights_ref=ray.put(bad))
    outcomes = remote_results(algo, apply_bad)
    assert all(o["error"] and o["missing"] == [] for o in outcomes), outcomes
    unreadable = functools.partial(_remote.set_policy_weights, weights_ref="not a ref")
    assert all(o["error"] for o in remote_results(algo, unreadable))
    read_unknown = remote_results(algo, functools.partial(_remote.policy_weights, policy_ids=["x"]))
    assert len(read_unknown) == healthy, read_unknown
    assert all(r["error"] is None and r["weights"] == {} for r in read_unknown), read_unknown
    assert group.num_healthy_remote_workers() == healthy
    algo.train()  # the workers are alive and still sample
    assert group.num_healthy_remote_workers() == healthy


def test_train_result_carries_shim_figures(shim: Any, build: Any) -> None:
    """The figures count what the shim sent: nothing while RLlib's own sync suffices, then one
    refreshed snapshot to each remote worker."""
    algo = build(helpers.ppo_config())
    helpers.copy_weights(algo, "snap")
    algo.train()  # the add's state goes out with the add
    snap = algo.get_policy("snap")
    snap.set_weights(helpers.perturbed(snap.get_weights(), 0.5))
    result = algo.train()
    if not shim.active:
        assert fix.RESULT_KEY not in result
        return
    figures = result[fix.RESULT_KEY]
    workers = _compat.num_remote_workers(training_group(algo))
    one_policy = sum(w.nbytes for w in snap.get_weights().values())
    assert (figures["broadcasts"], figures["policies_broadcast"]) == (1, 1), figures
    assert figures["bytes_broadcast"] == one_policy * workers, figures
    assert figures["broadcast_seconds"] > 0.0, figures
    assert algo.train()[fix.RESULT_KEY]["policies_broadcast"] == 0  # nothing changed since


def test_duplicate_policy_id_raises_key_error_and_adds_nothing(shim: Any, build: Any) -> None:
    algo = build(helpers.ppo_config(evaluation_workers=1))
    policy_cls = type(algo.get_policy("main"))
    spaces = {"observation_space": OBSERVATION_SPACE, "action_space": ACTION_SPACE}
    with pytest.raises(KeyError):
        algo.add_policy("main", policy_cls, **spaces)

    # An id only the evaluation workers have: RLlib adds it to the training workers, then fails.
    _compat.evaluation_group(algo).add_policy("eval_only", policy_cls, **spaces)
    with pytest.raises(KeyError):
        algo.add_policy("eval_only", policy_cls, **spaces)
    on_training_workers = [
        "eval_only" in _compat.policy_ids(_compat.local_worker(training_group(algo)))
    ]
    on_training_workers += [
        "eval_only" in ids for ids in remote_results(algo, helpers.policy_ids_of)
    ]
    if shim.active:
        assert not any(on_training_workers), "a failed add must leave nothing behind"
    else:
        assert all(on_training_workers), "RLlib alone half-adds"
