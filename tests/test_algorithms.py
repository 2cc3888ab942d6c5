"""Issue 5 (other algorithms): DQN (off-policy, replay) and APPO (asynchronous sampling, a
learner thread) on the legacy stack, each on the oldest and the newest tested Ray it runs on."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest
from conftest import Shim, shim_mode

import helpers
import ray_compat
import rllib_addpolicy_fix as fix
from rllib_addpolicy_fix.syncing import tracking as _tracking

RAY = ray_compat.RUNNING
OLDEST, NEWEST = ray_compat.OLDEST, ray_compat.NEWEST
APPO_RUNS_ON = (OLDEST, NEWEST)

pytestmark = pytest.mark.timeout(300)


@pytest.fixture(
    # RLlib alone where each algorithm's newest tested run is: APPO's on the newest Ray, DQN's
    # on the newest that builds legacy DQN.
    params=ray_compat.shim_modes(
        RAY in (NEWEST, ray_compat.NEWEST_WITH_LEGACY_DQN),
        "the newest tested Ray, and the newest that builds legacy DQN",
    )
)
def shim(request: pytest.FixtureRequest) -> Iterator[Shim]:
    with shim_mode(request.param) as mode:
        yield mode


@pytest.mark.parametrize(
    "algorithm",
    [
        pytest.param(
            "DQN",
            marks=pytest.mark.skipif(
                not ray_compat.DQN_TESTED, reason="RLlib cannot build legacy DQN here"
            ),
        ),
        pytest.param(
            "APPO", marks=pytest.mark.skipif(RAY not in APPO_RUNS_ON, reason=str(APPO_RUNS_ON))
        ),
    ],
)
def test_seed_copy_weights_reaches_remote_workers_in_other_algorithms(
    shim: Any, build: Any, algorithm: str
) -> None:
    algo = build(helpers.algorithm_config(algorithm, callbacks=helpers.SampleProbe))
    algo.train()
    helpers.copy_weights(algo, "snap1")
    snapshot = helpers.digest(algo.get_policy("snap1").get_weights())
    counts = helpers.sample_count(algo)
    results, sent = [], []
    with_snapshot: list[dict[str, str]] = []
    while not with_snapshot and len(results) < 20:  # APPO's first results may predate the add
        results.append(algo.train())
        sent += _tracking.sent_in_last_result(algo)
        with_snapshot = [
            s for s in helpers.samples_since(algo, counts, required=False) if "snap1" in s
        ]
    # DQN re-sends every policy after it learns, but samples first; APPO samples all along.
    assert with_snapshot, "no sample with the snapshot"
    helpers.expect_sampled_with(shim, with_snapshot, "snap1", snapshot)
    if not shim.active:
        return
    results.append(algo.train())
    sent += _tracking.sent_in_last_result(algo)
    # "main" trains on (for APPO in a background thread), so compare the snapshot only.
    shim.expect(fix.verify(algo, ["snap1"]), "snap1")
    # RLlib delivers the trained policy itself; the shim sent the snapshot, once.
    assert sent == ["snap1"], sent
