"""The fix works wherever the Algorithm runs: in a Tune trial (``Tuner`` with the class, two
trials at once, or a registered name; ``tune.run`` with a user's subclass), in
``ray.remote(PPO)``, and in a user's own actor that builds the Algorithm.

The league is played by ``helpers.LeagueProbe`` inside the hosting process, which reports the
largest remote-vs-driver difference it saw. "Uninstalled" runs the same with the shim turned off
in that process (RLlib alone), where the difference must show; it runs on the newest tested
Ray (the installed runs on every one), to keep CI within its time.
"""

from __future__ import annotations

import csv
import logging
import os
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import ray
from ray import tune

import helpers
import ray_compat
import rllib_addpolicy_fix as fix

RAY = ray_compat.RUNNING
ITERATIONS = 3

pytestmark = pytest.mark.timeout(400)


NEWEST = ray_compat.NEWEST
# Every tested release runs the two hosts that differ most (a trial by registered name with
# evaluation workers, an Algorithm actor); the oldest and the newest run the others.


@pytest.fixture(params=ray_compat.shim_modes(RAY == NEWEST, "the newest tested Ray"))
def probe(request: pytest.FixtureRequest, ray_session: Any) -> Iterator[type]:
    yield helpers.LeagueProbe if request.param == "installed" else helpers.LeagueProbeWithoutShim


def expect_consistent_league(probe: type, metrics: dict[str, Any]) -> None:
    """The snapshots matched the driver's on every remote copy ``verify`` read and, where the
    probe records them (``LeagueProbe``), whenever a remote worker sampled; RLlib alone must
    diverge in both."""
    assert metrics["league_checks"] > 0 and metrics["league_uncompared"] == 0, metrics
    assert metrics["league_sampled"] > 0, metrics
    if probe is helpers.LeagueProbe:
        assert metrics["league_max_diff"] == 0.0, metrics
        assert metrics["league_stale_samples"] == 0, metrics
    else:
        assert metrics["league_max_diff"] > 0.0, f"RLlib alone must diverge: {metrics}"
        assert metrics["league_stale_samples"] > 0, metrics


def league_config(probe: type, evaluation_workers: int = 0) -> Any:
    return helpers.ppo_config(callbacks=probe, evaluation_workers=evaluation_workers)


def tune_run_config(tmp_path: Path) -> Any:
    return helpers.run_config(
        stop={"training_iteration": ITERATIONS}, storage_path=str(tmp_path), verbose=0
    )


class _Collect(logging.Handler):
    def __init__(self) -> None:
        super().__init__(logging.WARNING)
        self.records: list[logging.LogRecord] = []

    def emit(self, record: logging.LogRecord) -> None:
        self.records.append(record)


def test_league_is_consistent_in_a_tune_trial_by_registered_name(
    probe: type, tmp_path: Path
) -> None:
    """``Tuner("PPO")`` with evaluation workers; the shim's figures reach progress.csv and no
    Tune logger warns about them. A trial whose process runs without the fix (RLlib alone
    there) is named in one warning in the driver, where the fix is in effect."""
    from ray.rllib.algorithms.ppo import PPO

    # Looking up a name Tune does not know yet makes RLlib import every algorithm it ships,
    # some of which need packages PPO does not (tensorflow_probability on 2.5, Pillow on 2.60):
    # register the name as RLlib would, and the lookup is the one a user's "PPO" goes through.
    tune.register_trainable("PPO", PPO)
    collect, in_driver = _Collect(), _Collect()
    tune_logger, shim_logger = logging.getLogger("ray.tune"), logging.getLogger(fix.__name__)
    tune_logger.addHandler(collect)
    shim_logger.addHandler(in_driver)
    try:
        results = tune.Tuner(
            "PPO",
            param_space=league_config(probe, evaluation_workers=1),
            run_config=tune_run_config(tmp_path),
        ).fit()
    finally:
        tune_logger.removeHandler(collect)
        shim_logger.removeHandler(in_driver)
    (result,) = list(results)
    assert result.error is None, result.error
    expect_consistent_league(probe, result.metrics)
    if probe is helpers.LeagueProbe:
        trial_dir = Path(getattr(result, "path", None) or result.log_dir)
        with open(trial_dir / "progress.csv", newline="") as progress:
            rows = list(csv.DictReader(progress))
        assert len(rows) == ITERATIONS
        for figure in ("broadcasts", "policies_broadcast", "bytes_broadcast", "broadcast_seconds"):
            assert all(row[f"{fix.RESULT_KEY}/{figure}"] != "" for row in rows), figure
        assert sum(float(row[f"{fix.RESULT_KEY}/policies_broadcast"]) for row in rows) > 0
    about_shim = [r.getMessage() for r in collect.records if fix.RESULT_KEY in r.getMessage()]
    assert about_shim == []
    without_fix = [r.getMessage() for r in in_driver.records if "without the fix" in r.getMessage()]
    if probe is helpers.LeagueProbe:
        assert without_fix == []
    else:
        (warning,) = without_fix
        assert str(result.metrics["trial_id"]) in warning and "pip install" in warning, warning


@ray_compat.at_the_ends
def test_league_is_consistent_in_two_concurrent_tune_trials_given_the_algorithm_class(
    probe: type, tmp_path: Path
) -> None:
    from ray.rllib.algorithms.ppo import PPO

    space = league_config(probe).to_dict()
    space["seed"] = tune.grid_search([1, 2])
    results = tune.Tuner(PPO, param_space=space, run_config=tune_run_config(tmp_path)).fit()
    trials = list(results)
    assert len(trials) == 2 and all(trial.error is None for trial in trials)
    for trial in trials:
        expect_consistent_league(probe, trial.metrics)


@ray_compat.at_the_ends
@pytest.mark.skipif(not hasattr(tune, "run"), reason="tune.run is gone in this Ray")
def test_league_is_consistent_with_tune_run_of_a_ppo_subclass(probe: type, tmp_path: Path) -> None:
    analysis = tune.run(
        helpers.league_ppo_subclass(),
        config=league_config(probe).to_dict(),
        stop={"training_iteration": ITERATIONS},
        storage_path=str(tmp_path),
        verbose=0,
    )
    (trial,) = analysis.trials
    expect_consistent_league(probe, trial.last_result)


def failing_league(probe: type) -> type:
    if probe is helpers.LeagueProbe:
        return helpers.LeagueThatFailsOnce
    return helpers.LeagueThatFailsOnceWithoutShim


def restorable_run_config(tmp_path: Path, max_failures: int) -> Any:
    if os.path.exists(helpers.FAILED_ONCE_MARKER):
        os.remove(helpers.FAILED_ONCE_MARKER)
    return helpers.run_config(
        name="league",
        stop={"training_iteration": ITERATIONS},
        storage_path=str(tmp_path),
        verbose=0,
        checkpoint_config=helpers.tune_class("CheckpointConfig")(checkpoint_frequency=1),
        failure_config=helpers.tune_class("FailureConfig")(max_failures=max_failures),
    )


def expect_restored_league(probe: type, results: Any) -> None:
    (result,) = list(results)
    assert result.error is None, result.error
    assert os.path.exists(helpers.FAILED_ONCE_MARKER)  # it did fail once, and was restored
    os.remove(helpers.FAILED_ONCE_MARKER)
    assert result.metrics["league_snapshots"] == ITERATIONS
    expect_consistent_league(probe, result.metrics)


@ray_compat.at_the_ends
def test_league_is_consistent_in_a_tune_trial_restored_after_a_failure(
    probe: type, tmp_path: Path
) -> None:
    """``FailureConfig(max_failures=1)``: the trial fails once after adding its second snapshot
    and is restored from the checkpoint that holds the first; the restored snapshot and those
    added after the restore match the driver on every remote worker."""
    from ray.rllib.algorithms.ppo import PPO

    results = tune.Tuner(
        PPO,
        param_space=helpers.ppo_config(callbacks=failing_league(probe)),
        run_config=restorable_run_config(tmp_path, max_failures=1),
    ).fit()
    expect_restored_league(probe, results)


@ray_compat.at_the_ends
def test_league_is_consistent_in_an_experiment_resumed_with_tuner_restore(
    probe: type, tmp_path: Path
) -> None:
    """The same trial with no retries errors out; ``Tuner.restore(..., resume_errored=True)``
    resumes it from its last checkpoint, snapshots included."""
    from ray.rllib.algorithms.ppo import PPO

    (errored,) = list(
        tune.Tuner(
            PPO,
            param_space=helpers.ppo_config(callbacks=failing_league(probe)),
            run_config=restorable_run_config(tmp_path, max_failures=0),
        ).fit()
    )
    assert errored.error is not None
    restored = tune.Tuner.restore(str(tmp_path / "league"), trainable=PPO, resume_errored=True)
    expect_restored_league(probe, restored.fit())


def train_in_actor(probe: type, actor: Any) -> None:
    try:
        for _ in range(ITERATIONS):
            result = ray.get(actor.train.remote())
        expect_consistent_league(probe, result)
    finally:
        ray.get(actor.stop.remote())
        ray.kill(actor)


def test_league_is_consistent_in_a_ray_remote_algorithm(probe: type) -> None:
    from ray.rllib.algorithms.ppo import PPO

    train_in_actor(probe, ray.remote(PPO).remote(config=league_config(probe)))


@ray_compat.at_the_ends
def test_league_is_consistent_in_a_users_own_actor(probe: type) -> None:
    train_in_actor(probe, ray.remote(helpers.LeagueRunner).remote(league_config(probe)))


@ray_compat.newest_only
def test_function_trainable_and_new_stack_trials_run_as_without_the_shim(
    ray_session: Any, tmp_path: Path
) -> None:
    """Bad input for the shim: a Tune trainable that is a function, and a trial on RLlib's new
    API stack (this Ray's default). Both run as they would without it; the new-stack trial's
    results carry none of the shim's figures."""
    from ray.rllib.algorithms.ppo import PPO, PPOConfig

    (scored,) = list(
        tune.Tuner(
            helpers.function_trainable,
            param_space={"x": 21},
            run_config=helpers.run_config(storage_path=str(tmp_path), verbose=0),
        ).fit()
    )
    assert scored.error is None and scored.metrics["score"] == 42
    new_stack = (
        PPOConfig()
        .environment("CartPole-v1")
        .env_runners(num_env_runners=0)
        .training(train_batch_size=200, minibatch_size=100, num_epochs=1)
    )
    (trial,) = list(
        tune.Tuner(
            PPO,
            param_space=new_stack,
            run_config=helpers.run_config(
                stop={"training_iteration": 1}, storage_path=str(tmp_path), verbose=0
            ),
        ).fit()
    )
    assert trial.error is None, trial.error
    assert fix.RESULT_KEY not in trial.metrics
