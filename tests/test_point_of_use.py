"""Checked where it is used: every remote sample of a policy the fix keeps in sync is taken at
the driver's weights, checked on the worker inside the call that samples, and the audit in each
result counts what was sampled with what.

What was sampled is measured independently of the fix: a callback digests, on the worker at the
end of each sample, the weights of every policy in that sample (``helpers.BatchProbe``). Each
test's control turns the check at the point of use off and leaves the rest of the fix (and the
audit) on: the batches go stale, and the audit counts exactly those. The oldest and the newest
tested Ray; the controls too.
"""

from __future__ import annotations

import functools
from collections.abc import Iterator
from typing import Any

import pytest

import helpers
import ray_compat
import rllib_addpolicy_fix as fix
from rllib_addpolicy_fix import _compat
from rllib_addpolicy_fix.syncing import transport as _transport
from rllib_addpolicy_fix.syncing import versions as _versions

pytestmark = [pytest.mark.timeout(420), ray_compat.at_the_ends]

KEPT = ("frozen", "main_v1")


@pytest.fixture(
    params=[
        "on",
        pytest.param(
            "off",
            marks=pytest.mark.skipif(
                ray_compat.RUNNING not in (ray_compat.OLDEST, ray_compat.NEWEST),
                reason="the control runs on the oldest and the newest",
            ),
        ),
    ]
)
def check_at_use(request: pytest.FixtureRequest) -> Iterator[bool]:
    """The check at the point of use on, or off (the control) with the rest of the fix on."""
    assert fix.install()
    _versions.CATCH_UP_AT_USE = request.param == "on"
    try:
        yield _versions.CATCH_UP_AT_USE
    finally:
        _versions.CATCH_UP_AT_USE = True


def league_config(*, restarts: bool = False, **options: Any) -> Any:
    """player_1 faces the config's slot "frozen" and the snapshots; every sample digested."""
    config = helpers.ppo_config(
        policies=("main", "frozen"), callbacks=helpers.BatchProbe, **options
    ).multi_agent(policy_mapping_fn=helpers.map_second_player_to_the_league)
    return ray_compat.enable_worker_restarts(config) if restarts else config


def league(algo: Any) -> Any:
    """The slot refreshed on the driver, a snapshot by the documented copy, both sampled."""
    algo.train()
    algo.set_weights({"frozen": helpers.perturbed(algo.get_policy("main").get_weights(), 0.5)})
    helpers.copy_weights(algo, "main_v1")
    algo.train()
    return algo


def driver_digests(algo: Any) -> dict[str, str]:
    return {pid: helpers.digest(algo.get_policy(pid).get_weights()) for pid in KEPT}


def sampled(group: Any) -> list[dict[str, str]]:
    """Every batch the set's remote workers recorded since the last call (the fix's own call,
    so no check and no catch-up rides along with it)."""
    replies = _transport.foreach_remote(group, helpers.take_probe_batches)
    assert not replies.unreached, f"workers {replies.unreached} did not answer"
    return [batch for _, batches in replies for batch in batches]


def train_through_restarts(
    algo: Any, group: Any, iterations: int
) -> tuple[list[dict[str, Any]], list[dict[str, str]]]:
    """``iterations`` of ``train()``, each with ``group``'s worker restarted right before its
    first sample call (``ray_compat.restart_before_sampling``): the results, and what the set's
    workers sampled with, collected after each iteration (a process killed next loses none)."""
    sampled(group)
    results, batches = [], []
    with ray_compat.restart_before_sampling(group) as restarts:
        for _ in range(iterations):
            restarts.next_iteration()
            results.append(algo.train())
            batches += sampled(group)
    assert len(restarts.ids) == iterations, restarts.ids
    return results, batches


def audit(results: list[dict[str, Any]], role: str) -> dict[str, int]:
    figures = [result[fix.RESULT_KEY] for result in results]
    names = ("sampled_batches", "stale_batches", "caught_up", "max_version_lag")
    return {
        name: (max if name == "max_version_lag" else sum)(f[f"{role}_{name}"] for f in figures)
        for name in names
    }


def test_a_worker_restarted_right_before_each_sample_call_samples_at_the_drivers_weights(
    check_at_use: bool, build: Any
) -> None:
    """The race made deterministic: after every driver-side check (the pre-use broadcast, the
    restart counts), right before the sample call is sent, the worker is killed and Ray
    restarts it; the call reaches a new process that holds "frozen" at its initial weights and
    lacks "main_v1". Checked on the worker inside that call, it catches up before it samples."""
    algo = league(build(league_config(restarts=True)))
    group = _compat.training_group(algo)
    expected = driver_digests(algo)
    results, batches = train_through_restarts(algo, group, 3)
    count, stale = helpers.stale_batches(batches, expected)
    figures = audit(results, "training")
    assert count > 0 and figures["sampled_batches"] == count, (count, figures)
    assert figures["stale_batches"] == stale, (stale, figures)  # the audit tells the truth
    if check_at_use:
        assert stale == 0, f"{stale} of {count} batches sampled with other weights"
        assert figures["caught_up"] >= 3 and figures["max_version_lag"] > 0, figures
        # The new process built the snapshot added at run time again, and sampled with it.
        assert sum("main_v1" in batch for batch in batches) >= 3, batches
    else:
        assert stale > 0, "without the check at the point of use the new process samples stale"


def test_weights_changed_on_a_worker_by_user_code_are_caught_up_before_it_samples(
    check_at_use: bool, build: Any
) -> None:
    """User code overwrites the refreshed slot on the remote workers, through the worker set;
    the driver's view of what they hold is then wrong. The next sample call finds the change
    (torch's change counters) and catches up; the audit counts the catch-up, or (control) the
    stale batches."""
    algo = league(build(league_config()))
    group = _compat.training_group(algo)
    sampled(group)
    expected = driver_digests(algo)
    overwrite = functools.partial(helpers.add_to_weights, policy_id="frozen", by=1.0)
    ray_compat.foreach_remote_worker(group, overwrite)
    results = [algo.train() for _ in range(2)]
    batches = sampled(group)
    count, stale = helpers.stale_batches(batches, expected)
    figures = audit(results, "training")
    assert count > 0 and figures["sampled_batches"] == count, (count, figures)
    assert figures["stale_batches"] == stale, (stale, figures)
    assert helpers.stale_batches(batches, {"frozen": expected["frozen"]})[0] > 0, "not sampled"
    if check_at_use:
        assert stale == 0 and figures["caught_up"] == 1, (stale, figures)
    else:
        assert stale > 0, (stale, figures)


def test_an_evaluation_worker_restarted_right_before_it_samples_evaluates_at_the_drivers_weights(
    check_at_use: bool, build: Any
) -> None:
    """The same race on the evaluation set: RLlib syncs it at the start of each evaluate(), and
    the worker is restarted after that, right before the evaluation's sample call."""
    algo = league(build(league_config(restarts=True, evaluation_workers=1)))
    evaluation = _compat.evaluation_group(algo)
    expected = driver_digests(algo)
    results, batches = train_through_restarts(algo, evaluation, 2)  # each trains, then evaluates
    count, stale = helpers.stale_batches(batches, expected)
    figures = audit(results, "evaluation")
    # (2.60 evaluates by asynchronous requests: a request's figures come back with its result,
    # which RLlib may fetch in the next evaluation, so the two windows need not end together.)
    assert count > 0 and figures["sampled_batches"] > 0, (count, figures)
    if check_at_use:
        assert stale == 0 and figures["stale_batches"] == 0, (stale, figures)
        assert figures["caught_up"] >= 1, figures
    else:
        assert stale > 0 and figures["stale_batches"] > 0, (stale, figures)


def test_appo_samples_asynchronously_at_the_drivers_weights(check_at_use: bool, build: Any) -> None:
    """APPO's sample requests are sent asynchronously; the check rides along with each, and the
    figures come back with the next synchronous call. "main", trained by APPO's learner
    thread, lags by design and is not counted."""
    config = helpers.algorithm_config("APPO", callbacks=helpers.BatchProbe).multi_agent(
        policies=helpers.league_policies(("main", "frozen")),
        policy_mapping_fn=helpers.map_second_player_to_the_league,
    )
    algo = league(build(config))
    group = _compat.training_group(algo)
    expected = driver_digests(algo)
    overwrite = functools.partial(helpers.add_to_weights, policy_id="frozen", by=1.0)
    ray_compat.foreach_remote_worker(group, overwrite)
    sampled(group)
    results = [algo.train() for _ in range(3)]
    count, stale = helpers.stale_batches(sampled(group), expected)
    figures = audit(results, "training")
    assert count > 0 and figures["sampled_batches"] > 0, (count, figures)
    if check_at_use:
        assert stale == 0 and figures["caught_up"] >= 1, (stale, figures)
        assert figures["stale_batches"] == 0, figures
    else:
        assert stale > 0 and figures["stale_batches"] > 0, (stale, figures)
