"""Issue 5 (part): the LRU policy cache and removal. Runs on the oldest and newest tested Ray."""

from __future__ import annotations

from typing import Any

import numpy as np
import pytest

import helpers
import rllib_addpolicy_fix as fix
from rllib_addpolicy_fix import _compat, _tracking

pytestmark = [
    pytest.mark.timeout(300),
    pytest.mark.skipif(
        str(_compat.installed_ray_version()) not in (_compat.TESTED_RAY[0], _compat.TESTED_RAY[-1]),
        reason="runs on the oldest and the newest tested Ray",
    ),
]


@pytest.mark.parametrize("swappable", [False, True], ids=["recreated", "swappable"])
def test_snapshots_stay_consistent_past_the_policy_cache(
    shim: Any, build: Any, swappable: bool
) -> None:
    algo = build(helpers.ppo_config(policy_map_capacity=2,
                                    policy_states_are_swappable=swappable))
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
