"""Old-stack configs, the way each release wants them (used by the demo and the tests)."""

from __future__ import annotations

from collections.abc import Iterable
from typing import TYPE_CHECKING, Any

from .calls import signature

if TYPE_CHECKING:
    from ray.rllib.algorithms.algorithm_config import AlgorithmConfig


def configure_old_stack(
    config: AlgorithmConfig,
    *,
    num_workers: int,
    evaluation_workers: int = 0,
    rollout_fragment_length: int | str = 20,
    train_batch_size: int = 80,
    hidden: Iterable[int] = (8,),
    custom_resources_per_worker: dict[str, float] | None = None,
) -> AlgorithmConfig:
    """Select the legacy stack and size the run, the way this Ray release wants it."""
    resources = custom_resources_per_worker or {}
    if hasattr(config, "api_stack"):  # 2.30+ (the new stack is the default from 2.40)
        config = config.api_stack(
            enable_rl_module_and_learner=False, enable_env_runner_and_connector_v2=False
        )
    elif getattr(config, "_enable_learner_api", False) is True:  # 2.7-2.9 PPO defaults to it
        config = config.training(_enable_learner_api=False).rl_module(_enable_rl_module_api=False)
    if hasattr(config, "env_runners"):
        config = config.env_runners(
            num_env_runners=num_workers,
            rollout_fragment_length=rollout_fragment_length,
            num_envs_per_env_runner=1,
            custom_resources_per_env_runner=resources,
        )
    else:
        config = config.rollouts(
            num_rollout_workers=num_workers,
            rollout_fragment_length=rollout_fragment_length,
            num_envs_per_worker=1,
        ).resources(custom_resources_per_worker=resources)
    config = config.framework("torch").training(model={"fcnet_hiddens": list(hidden)})
    if hasattr(config, "sgd_minibatch_size") or hasattr(config, "minibatch_size"):  # PPO family
        config = config.training(**ppo_batch_kwargs(config, train_batch_size))
    if evaluation_workers:
        eval_kwarg = (
            "evaluation_num_env_runners"
            if "evaluation_num_env_runners" in signature(type(config).evaluation).parameters
            else "evaluation_num_workers"
        )
        config = config.evaluation(
            evaluation_interval=1,
            evaluation_duration=2,
            evaluation_duration_unit="episodes",
            **{eval_kwarg: evaluation_workers},
        )
    return config.reporting(min_time_s_per_iteration=0, min_sample_timesteps_per_iteration=0)


def ppo_batch_kwargs(config: AlgorithmConfig, train_batch_size: int) -> dict[str, Any]:
    """PPO's batch settings under this release's names (renamed in 2.40: ``sgd_minibatch_size``
    -> ``minibatch_size``, ``num_sgd_iter`` -> ``num_epochs``)."""
    minibatch = "minibatch_size" if hasattr(config, "minibatch_size") else "sgd_minibatch_size"
    epochs = "num_epochs" if hasattr(config, "num_epochs") else "num_sgd_iter"
    return {
        "train_batch_size": train_batch_size,
        minibatch: max(train_batch_size // 2, 1),
        epochs: 1,
    }


def without_worker_restarts(config: AlgorithmConfig) -> AlgorithmConfig:
    """Worker restarts off: the default up to 2.39; from 2.40 ``restart_failed_env_runners``
    is on by default."""
    if getattr(config, "restart_failed_env_runners", False) is True:
        return config.fault_tolerance(restart_failed_env_runners=False)
    return config
