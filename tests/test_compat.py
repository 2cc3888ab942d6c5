"""Issue 3: the shim stays out of the way where it has nothing to fix."""

from __future__ import annotations

import logging
from typing import Any

import pytest

import rllib_addpolicy_fix as fix
from rllib_addpolicy_fix import _compat, _guard
from rllib_addpolicy_fix.tools.game import ACTION_SPACE, OBSERVATION_SPACE

pytestmark = pytest.mark.timeout(300)

new_stack_is_default = pytest.mark.skipif(
    not _compat.new_stack_is_default(),
    reason="the new API stack is RLlib's default (and stable) from Ray 2.40",
)


def add_policy_outcome(algo: Any, policy_id: str) -> tuple[str, str]:
    try:
        algo.add_policy(
            policy_id, type(None), observation_space=OBSERVATION_SPACE, action_space=ACTION_SPACE
        )
    except Exception as error:  # noqa: BLE001 - the outcome is what we compare
        return type(error).__name__, str(error).replace(policy_id, "<id>")
    return "returned", ""


@new_stack_is_default
def test_new_api_stack_algorithm_behaves_exactly_as_without_the_shim(
    build: Any, caplog: pytest.LogCaptureFixture, monkeypatch: pytest.MonkeyPatch
) -> None:
    from ray.rllib.algorithms.ppo import PPOConfig

    config = (
        PPOConfig()
        .environment("CartPole-v1")
        .env_runners(num_env_runners=1)
        .training(train_batch_size_per_learner=64, minibatch_size=32, num_epochs=1)
    )
    algo = build(config)
    assert not _compat.uses_old_stack(algo)
    fix.uninstall()
    try:
        without = add_policy_outcome(algo, "without_shim")
    finally:
        assert fix.install()
    monkeypatch.setattr(_guard, "warned", set())  # as in a process that has not warned yet
    with caplog.at_level(logging.WARNING, logger="rllib_addpolicy_fix"):
        with_shim = add_policy_outcome(algo, "with_shim")
        results = [algo.train(), algo.train()]
    assert with_shim == without
    assert all(fix.RESULT_KEY not in result for result in results)
    warnings = [r for r in caplog.records if "new (or hybrid) API stack" in r.getMessage()]
    assert len(warnings) == 1, [r.getMessage() for r in warnings]  # said once, not per call
