"""Issue 5 (bad input): each gets RLlib's error or a clearer one, no remote worker is killed, and
the driver and its workers still agree on which policies exist. Oldest and newest tested Ray."""

from __future__ import annotations

import functools
import threading
from typing import Any

import numpy as np
import pytest

import helpers
import ray_compat
import rllib_addpolicy_fix as fix
from rllib_addpolicy_fix import _compat
from rllib_addpolicy_fix.tools.game import ACTION_SPACE, OBSERVATION_SPACE

pytestmark = [
    pytest.mark.timeout(300),
    ray_compat.at_the_ends,
]
SPACES = {"observation_space": OBSERVATION_SPACE, "action_space": ACTION_SPACE}


def policy_sets_agree(algo: Any) -> bool:
    """Every remote worker of each set has exactly the policies of that set's driver."""
    truth = _compat.local_worker(_compat.training_group(algo))
    for group in _compat.groups(algo).values():
        own = _compat.local_worker(group) or truth
        expected = set(_compat.policy_ids(own))
        remote = [
            set(ids) for ids in ray_compat.foreach_remote_worker(group, helpers.policy_ids_of)
        ]
        if any(ids != expected for ids in remote):
            return False
    return True


def test_callable_policies_to_train_is_applied_on_every_worker(shim: Any, build: Any) -> None:
    algo = build(helpers.ppo_config())
    group = _compat.training_group(algo)
    main = algo.get_policy("main")
    if not shim.active:  # RLlib's worker set calls list() on it, although add_policy documents it
        with pytest.raises(TypeError):
            algo.add_policy("snap", type(main), policies_to_train=helpers.train_only_main, **SPACES)
        assert policy_sets_agree(algo)
        return
    algo.add_policy("snap", type(main), policies_to_train=helpers.train_only_main, **SPACES)
    remote = helpers.remote_results(algo, functools.partial(helpers.trains, policy_id="snap"))
    driver = _compat.local_worker(group)
    assert remote == [False] * _compat.num_remote_workers(group) and not driver.is_policy_to_train(
        "snap", None
    )
    assert driver.is_policy_to_train("main", None)
    assert policy_sets_agree(algo)
    algo.get_policy("snap").set_weights(main.get_weights())
    algo.train()
    shim.expect(fix.verify(algo), "snap")


def test_unpicklable_policies_to_train_is_refused_before_anything_is_added(build: Any) -> None:
    algo = build(helpers.ppo_config())
    lock = threading.Lock()

    def holds_a_lock(policy_id: str, batch: Any = None) -> bool:
        return lock is not None

    with pytest.raises(TypeError, match="cannot be pickled"):
        algo.add_policy(
            "snap", type(algo.get_policy("main")), policies_to_train=holds_a_lock, **SPACES
        )
    assert "snap" not in _compat.policy_ids(_compat.local_worker(_compat.training_group(algo)))
    assert policy_sets_agree(algo)


def test_set_weights_naming_an_unknown_id_still_delivers_the_known_ones_and_kills_no_worker(
    shim: Any, build: Any
) -> None:
    algo = build(helpers.ppo_config())
    algo.train()
    helpers.copy_weights(algo, "snap")
    group = _compat.training_group(algo)
    healthy = group.num_healthy_remote_workers()
    weights = algo.get_policy("main").get_weights()
    if ray_compat.SET_WEIGHTS_SKIPS_UNKNOWN_IDS:
        algo.set_weights({"ghost": weights})
    else:
        with pytest.raises(KeyError):
            algo.set_weights({"ghost": weights})
    algo.set_weights({"snap": {k: np.full_like(v, 0.25) for k, v in weights.items()}})
    algo.train()
    assert group.num_healthy_remote_workers() == healthy
    assert policy_sets_agree(algo)
    shim.expect(fix.verify(algo), "snap")


def test_zero_remote_workers_needs_no_broadcast(shim: Any, build: Any) -> None:
    algo = build(helpers.ppo_config(num_workers=0))
    algo.train()
    helpers.copy_weights(algo, "snap")
    result = algo.train()
    assert fix.verify(algo).checks == ()  # nothing remote to compare: RLlib is right alone
    assert "snap" in _compat.policy_ids(_compat.local_worker(_compat.training_group(algo)))
    if shim.active:
        assert fix.RESULT_KEY in result and result[fix.RESULT_KEY]["broadcasts"] == 0
        assert fix.sync(algo).sent == {"training": []}
    else:
        assert fix.RESULT_KEY not in result


def test_calls_after_stop_get_rllib_errors_and_never_hang(shim: Any, build: Any) -> None:
    algo = build(helpers.ppo_config())
    algo.train()
    helpers.copy_weights(algo, "snap")
    algo.stop()

    def outcome(call: Any) -> str:
        try:
            call()
        except Exception as error:  # noqa: BLE001 - recorded and checked below
            return f"{type(error).__name__}: {error}".replace("late_", "late")
        return "ok"

    outcomes = {
        "add_policy": outcome(lambda: helpers.copy_weights(algo, "late")),
        "sync": outcome(lambda: fix.sync(algo)),
        "verify": outcome(lambda: fix.verify(algo)),
    }
    # No remote worker is left after stop(): nothing for the shim to send, nothing to compare.
    assert outcomes["sync"] == "ok" and outcomes["verify"] == "ok", outcomes
    assert not fix.verify(algo).checks
    if shim.active:  # an add after stop() ends as RLlib's own does
        fix.uninstall()
        try:
            rllib_alone = outcome(lambda: helpers.copy_weights(algo, "late_"))
        finally:
            assert fix.install()
        assert outcomes["add_policy"] == rllib_alone, (outcomes, rllib_alone)
