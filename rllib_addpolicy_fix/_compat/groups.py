"""An Algorithm's worker sets, and what kind of algorithm it is: names that moved between
Ray releases (``workers`` -> ``env_runner_group``, ``local_worker()`` ->
``local_env_runner``, the new-stack flags)."""

from __future__ import annotations

import sys
import threading
from typing import TYPE_CHECKING, Any

from packaging.specifiers import SpecifierSet

from .policies import policy_ids
from .versions import installed_ray_version

if TYPE_CHECKING:
    from ray.rllib.algorithms.algorithm import Algorithm


#: Config flags that, when true, mean the algorithm is not on the pure legacy stack (newest
#: names first; the 2.7-2.30 names raise on access in later releases).
_NEW_STACK_FLAGS = (
    "enable_env_runner_and_connector_v2",
    "enable_rl_module_and_learner",
    "_enable_new_api_stack",
    "_enable_learner_api",
    "_enable_rl_module_api",
)


def uses_old_stack(algo: Algorithm) -> bool:
    """True when ``algo`` samples with RolloutWorkers and trains Policies on the driver (the
    stack the shim fixes); False for the new and the hybrid (Learner/RLModule) stacks."""
    return config_uses_old_stack(getattr(algo, "config", None))


def group_uses_old_stack(group: Any) -> bool:
    """The same question for a worker set (it keeps its config as ``_remote_config``)."""
    return config_uses_old_stack(getattr(group, "_remote_config", None))


def config_uses_old_stack(config: Any) -> bool:
    for flag in _NEW_STACK_FLAGS:
        try:
            if getattr(config, flag, False) is True:
                return False
        except Exception:  # noqa: BLE001 - deprecated flags raise on access in newer releases
            continue
    return True


#: ``Algorithm.workers``/``evaluation_workers`` became ``env_runner_group``/
#: ``eval_env_runner_group`` in 2.40, where the old names are broken deprecated properties
#: (truthy bound methods, ``hasattr`` True): never fall back to them there.
_ALGORITHM_GROUP_ATTRIBUTES = (
    (SpecifierSet(">=2.40"), "env_runner_group", "eval_env_runner_group"),
    (SpecifierSet("<2.40"), "workers", "evaluation_workers"),
)


def _group_attributes() -> tuple[str, str]:
    version = installed_ray_version()
    for era, training, evaluation in _ALGORITHM_GROUP_ATTRIBUTES:
        if version is not None and era.contains(version, prereleases=True):
            return training, evaluation
    return _ALGORITHM_GROUP_ATTRIBUTES[0][1:]


def training_group(algo: Algorithm) -> Any:
    """The training worker set (``WorkerSet`` / ``EnvRunnerGroup``)."""
    return getattr(algo, _group_attributes()[0], None)


def evaluation_group(algo: Algorithm) -> Any:
    return getattr(algo, _group_attributes()[1], None)


def groups(algo: Algorithm) -> dict[str, Any]:
    """The worker sets of ``algo`` by role, skipping those it does not have."""
    found = {"training": training_group(algo), "evaluation": evaluation_group(algo)}
    return {role: group for role, group in found.items() if group is not None}


def groups_receiving_add(algo: Algorithm, arguments: dict[str, Any]) -> dict[str, Any]:
    """The worker sets an ``Algorithm.add_policy`` call adds to, read as RLlib reads them:
    ``add_to_env_runners``/``add_to_eval_env_runners`` from 2.40, ``evaluation_workers``
    before (the training set always)."""
    if "add_to_eval_env_runners" in arguments:
        wanted = {
            "training": arguments.get("add_to_env_runners") is True,
            "evaluation": arguments.get("add_to_eval_env_runners") is True,
        }
    else:
        wanted = {"training": True, "evaluation": arguments.get("evaluation_workers") is True}
    return {role: group for role, group in groups(algo).items() if wanted[role]}


def local_worker(group: Any) -> Any:
    """The group's driver-side RolloutWorker, or None."""
    if group is None:
        return None
    if "local_env_runner" in dir(type(group)):
        return group.local_env_runner
    return group.local_worker()


def num_remote_workers(group: Any) -> int:
    return int(group.num_remote_workers()) if group is not None else 0


def trained_in_background(group: Any) -> list[str]:
    """Trained policies of a set whose driver-side worker a learner thread updates between
    iterations; the algorithm pushes their weights to the workers itself, bypassing
    ``sync_weights`` (IMPALA and APPO on the legacy stack: ``LearnerThread`` and its subclasses
    in ``ray.rllib.execution``, every release 2.5-2.60). Empty for the others."""
    learner_thread = getattr(
        sys.modules.get("ray.rllib.execution.learner_thread"), "LearnerThread", None
    )
    worker = local_worker(group)
    if learner_thread is None or worker is None:
        return []
    if not any(
        isinstance(thread, learner_thread) and thread.local_worker is worker
        for thread in threading.enumerate()
    ):
        return []
    return [pid for pid in policy_ids(worker) if is_policy_to_train(worker, pid)]


def is_policy_to_train(worker: Any, policy_id: str) -> bool:
    """RLlib's own reading of ``worker.is_policy_to_train``: ``None`` (no ``policies_to_train``
    configured, e.g. every single-agent config) means every policy is trained."""
    check = getattr(worker, "is_policy_to_train", None)
    return check is None or bool(check(policy_id, None))


def restore_workers(algo: Any, group: Any) -> Any:
    """RLlib's own restore of ``group``'s out-of-service remote workers: it probes each and sets
    the driver's state on those that answer (``restore_workers``; ``restore_env_runners`` where
    RLlib has it, by 2.50)."""
    restore = getattr(algo, "restore_env_runners", None) or algo.restore_workers
    return restore(group)


def trial_runs_old_stack_algorithm(trial: Any) -> bool:
    """Whether a Tune trial (``ray.tune.experiment.Trial``, 2.5 to 2.60) hosts an RLlib
    Algorithm on the legacy stack: its trainable is an Algorithm class, and its config, laid
    over that algorithm's defaults, selects the legacy stack (the default up to 2.39)."""
    from ray.rllib.algorithms.algorithm import Algorithm

    try:
        trainable: Any = trial.get_trainable_cls()
        if not (isinstance(trainable, type) and issubclass(trainable, Algorithm)):
            return False
        algorithm_class: Any = trainable
        config = algorithm_class.get_default_config()  # a new config object each call
        if isinstance(config, dict):  # an algorithm that still keeps a dict config
            return not any(trial.config.get(flag) is True for flag in _NEW_STACK_FLAGS)
        config.update_from_dict(dict(trial.config))
        return config_uses_old_stack(config)
    except Exception:  # noqa: BLE001 - a config this cannot read: no verdict, no warning
        return False
