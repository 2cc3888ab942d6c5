"""Issue 5 (part): the LRU policy cache and removal. Runs on the oldest and newest tested Ray."""

from __future__ import annotations

from typing import Any

import numpy as np
import pytest

import helpers
import ray_compat
import rllib_addpolicy_fix as fix
from rllib_addpolicy_fix import _compat
from rllib_addpolicy_fix.syncing import tracking as _tracking
from rllib_addpolicy_fix.syncing import transport as _transport

pytestmark = [
    pytest.mark.timeout(300),
    ray_compat.at_the_ends,
]


@pytest.mark.parametrize("swappable", [False, True], ids=["recreated", "swappable"])
def test_snapshots_stay_consistent_past_the_policy_cache(
    shim: Any, build: Any, swappable: bool
) -> None:
    algo = build(helpers.ppo_config(policy_map_capacity=2, policy_states_are_swappable=swappable))
    algo.train()
    for index in range(6):  # each add evicts another snapshot, changed but not yet broadcast
        helpers.copy_weights(algo, f"snap{index}")
    algo.train()
    shim.expect(fix.verify(algo))

    # A Policy object still held after its eviction (and, with swappable states, reused for
    # another id) cannot make the shim send wrong weights: it reads the map, not the object.
    held = algo.get_policy("snap0")
    for index in range(1, 6):
        algo.get_policy(f"snap{index}")
    held.set_weights({k: np.full_like(v, 0.5) for k, v in held.get_weights().items()})
    algo.train()
    shim.expect(fix.verify(algo))


def test_removed_policy_is_forgotten_and_can_be_re_added(shim: Any, build: Any) -> None:
    algo = build(helpers.ppo_config())
    algo.train()
    helpers.copy_weights(algo, "snap")
    algo.train()
    algo.remove_policy("snap")
    records = [_tracking.record_for(g) for g in _compat.groups(algo).values()]
    if shim.active:
        assert all("snap" not in record.delivered for record in records)
    helpers.copy_weights(algo, "snap")
    algo.train()
    shim.expect(fix.verify(algo), "snap")


def test_adding_to_one_worker_set_checks_only_that_set_for_duplicates(
    shim: Any, build: Any
) -> None:
    import inspect

    from rllib_addpolicy_fix.tools.game import ACTION_SPACE, OBSERVATION_SPACE

    algo = build(helpers.ppo_config(evaluation_workers=1))
    policy_cls = type(algo.get_policy("main"))
    spaces = {"observation_space": OBSERVATION_SPACE, "action_space": ACTION_SPACE}
    _compat.evaluation_group(algo).add_policy("x", policy_cls, **spaces)  # evaluation set only
    training_only = (  # how this Ray spells "add to the training workers alone"
        {"add_to_eval_env_runners": False}
        if "add_to_eval_env_runners" in inspect.signature(algo.add_policy).parameters
        else {"evaluation_workers": False}
    )
    algo.add_policy("x", policy_cls, **training_only, **spaces)  # legal in RLlib: no KeyError
    assert "x" in _compat.policy_ids(_compat.local_worker(_compat.training_group(algo)))
    shim.expect(helpers.checks_of(fix.verify(algo, ["x"]), "training"), "x")


def test_failed_add_leaves_nothing_half_added(shim: Any, build: Any) -> None:
    from rllib_addpolicy_fix.tools.game import ACTION_SPACE, OBSERVATION_SPACE

    algo = build(helpers.ppo_config())
    group = _compat.training_group(algo)
    healthy = group.num_healthy_remote_workers()
    main = algo.get_policy("main")
    bad_state = main.get_state()
    bad_state["weights"] = {k: np.zeros((3, 3), np.float32) for k in bad_state["weights"]}
    with pytest.raises(Exception):  # noqa: B017 - RLlib's own error, whatever its type
        algo.add_policy(
            "bad",
            type(main),
            observation_space=OBSERVATION_SPACE,
            action_space=ACTION_SPACE,
            policy_state=bad_state,
        )
    on_driver = "bad" in _compat.policy_ids(_compat.local_worker(group))
    on_workers = [
        "bad" in ids for _, ids in _transport.foreach_remote(group, helpers.policy_ids_of)
    ]
    assert not any(on_workers)
    assert on_driver is not shim.active  # RLlib alone leaves it on the driver only
    assert group.num_healthy_remote_workers() == healthy
    algo.train()


def test_snapshots_added_from_eight_threads_at_once_stay_consistent(shim: Any, build: Any) -> None:
    from concurrent.futures import ThreadPoolExecutor

    algo = build(helpers.ppo_config())
    algo.train()
    with ThreadPoolExecutor(max_workers=8) as pool:
        list(pool.map(lambda index: helpers.copy_weights(algo, f"thread{index}"), range(8)))
    algo.train()
    report = fix.verify(algo)
    assert {c.policy_id for c in report.checks} >= {f"thread{i}" for i in range(8)}
    shim.expect(report)


def test_custom_numpy_policy_snapshots_reach_remote_workers(shim: Any, build: Any) -> None:
    from rllib_addpolicy_fix.tools.game import ACTION_SPACE, OBSERVATION_SPACE

    algo = build(helpers.ppo_config())
    algo.train()
    algo.add_policy(
        "numpy_opponent",
        helpers.NumpyPolicy,
        observation_space=OBSERVATION_SPACE,
        action_space=ACTION_SPACE,
    )
    shim.expect(fix.verify(algo, ["numpy_opponent"]), "numpy_opponent")
    policy = algo.get_policy("numpy_opponent")
    policy.set_weights({"w": policy.get_weights()["w"] + 1.0})
    algo.train()
    shim.expect(fix.verify(algo, ["numpy_opponent"]), "numpy_opponent")


def test_a_parameter_replaced_on_the_driver_reaches_remote_workers(shim: Any, build: Any) -> None:
    import torch

    algo = build(helpers.ppo_config())
    algo.train()
    helpers.copy_weights(algo, "snap")
    algo.train()  # the shim now has the snapshot's tensors cached
    linear = next(
        m for m in algo.get_policy("snap").model.modules() if isinstance(m, torch.nn.Linear)
    )
    linear.weight = torch.nn.Parameter(torch.full_like(linear.weight, 0.125))  # a new tensor
    algo.train()
    shim.expect(fix.verify(algo, ["snap"]), "snap")
