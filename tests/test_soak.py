"""Issue 5 (soak), shortened for CI: ``benchmarks/soak.py`` runs the full 200 cycles."""

from __future__ import annotations

import gc
import os
from typing import Any

import pytest

import comparisons
import helpers
import ray_compat
from rllib_addpolicy_fix import _compat
from rllib_addpolicy_fix.syncing import stamps as _stamps
from rllib_addpolicy_fix.syncing import tracking as _tracking
from rllib_addpolicy_fix.tools import demo

CYCLES = int(os.environ.get("SOAK_CYCLES", "30"))


@pytest.mark.timeout(600)
@ray_compat.at_the_ends
def test_add_refresh_remove_cycles_stay_consistent_and_tracking_matches_the_league(
    shim: Any, build: Any
) -> None:
    algo = build(helpers.ppo_config())
    algo.train()
    cycles = demo.soak(algo, CYCLES)
    if not shim.active:
        assert not next(cycles).consistent  # the first snapshot already diverges
        return
    seen = list(cycles)
    for cycle in seen:  # every copy compared, on every remote worker, and equal
        comparisons.expect_consistent(cycle.report)
    truth = _compat.local_worker(_compat.training_group(algo))
    live = set(_compat.policy_ids(truth))
    assert live == {"main", *seen[-1].league}
    record = _tracking.record_for(_compat.training_group(algo))
    assert set(record.delivered) == live  # nothing tracked for removed policies
    gc.collect()  # the shim's tensor cache keeps no removed policy's model alive
    live_modules = {id(module) for pid in live for module in algo.get_policy(pid).model.modules()}
    assert {id(module) for module in _stamps._lists_by_module.keys()} <= live_modules
    growth = seen[-1].rss_bytes - seen[len(seen) // 3].rss_bytes
    print(
        f"driver RSS growth over the last {len(seen) - len(seen) // 3} of {len(seen)} "
        f"cycles: {growth / 2**20:+.1f} MiB"
    )
    assert growth < 32 * 2**20
