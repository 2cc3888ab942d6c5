"""Everything that knows how RLlib's legacy-stack API differs between Ray releases.

The rest of the package asks this module and never names a Ray version, a renamed attribute or a
renamed keyword itself (see ``shared/ray-api-drift.md`` for the table these gates come from).
Version gates are ``packaging`` specifiers; where a rename is visible on the object, feature
detection decides and the specifier only documents the boundary.
"""

from __future__ import annotations

import functools
import inspect
import logging
import sys
import threading
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from importlib import metadata
from typing import TYPE_CHECKING, Any

from packaging.specifiers import SpecifierSet
from packaging.version import InvalidVersion, Version

if TYPE_CHECKING:
    from ray.rllib.algorithms.algorithm import Algorithm
    from ray.rllib.algorithms.algorithm_config import AlgorithmConfig
    from ray.rllib.policy.policy import Policy

logger = logging.getLogger(__name__)

#: Ray releases the shim patches. Outside this range it patches nothing and says so once.
SUPPORTED_RAY = SpecifierSet(">=2.5.0,<2.61")

#: Releases CI runs the behaviour tests on, oldest first; each marks an API boundary (the
#: README's compatibility table lists exactly these).
TESTED_RAY = ("2.5.1", "2.10.0", "2.30.0", "2.40.0", "2.60.0")

_ENV_RUNNER_GROUP_ERA = SpecifierSet(">=2.30")
_WORKER_SET_ERA = SpecifierSet("<2.30")


@dataclass(frozen=True)
class Target:
    """One attribute the shim wraps, declared as data so install/uninstall/doctor share it."""

    module: str
    owner: str
    attribute: str
    when: SpecifierSet = SpecifierSet()
    #: Installed as a plain function that pickles by reference (see ``_patches._wrap``): for
    #: methods of classes Ray turns into actors (an Algorithm in a Tune trial or
    #: ``ray.remote(PPO)``).
    by_reference: bool = False

    @property
    def name(self) -> str:
        return f"{self.module}.{self.owner}.{self.attribute}"


_ALGORITHM = "ray.rllib.algorithms.algorithm"
_ROLLOUT_WORKER = "ray.rllib.evaluation.rollout_worker"
_ENV_RUNNER_GROUP = "ray.rllib.env.env_runner_group"
_WORKER_SET = "ray.rllib.evaluation.worker_set"
_POLICY_MAP = "ray.rllib.policy.policy_map"

#: Wrapper role -> where that role's original lives, per Ray era.
TARGETS: dict[str, tuple[Target, ...]] = {
    "algorithm_add_policy": (Target(_ALGORITHM, "Algorithm", "add_policy", by_reference=True),),
    "algorithm_remove_policy": (
        Target(_ALGORITHM, "Algorithm", "remove_policy", by_reference=True),
    ),
    "algorithm_step": (Target(_ALGORITHM, "Algorithm", "step", by_reference=True),),
    # RLlib building or restoring its workers' state: ``restore_workers`` became
    # ``restore_env_runners`` (2.50); a name the class does not define is skipped.
    "algorithm_sets_up_workers": tuple(
        Target(_ALGORITHM, "Algorithm", name, by_reference=True)
        for name in ("setup", "__setstate__", "restore_workers", "restore_env_runners")
    ),
    "group_add_policy": (
        Target(_ENV_RUNNER_GROUP, "EnvRunnerGroup", "add_policy", _ENV_RUNNER_GROUP_ERA),
        Target(_WORKER_SET, "WorkerSet", "add_policy", _WORKER_SET_ERA),
    ),
    "group_sync_weights": (
        Target(_ENV_RUNNER_GROUP, "EnvRunnerGroup", "sync_weights", _ENV_RUNNER_GROUP_ERA),
        Target(_WORKER_SET, "WorkerSet", "sync_weights", _WORKER_SET_ERA),
    ),
    # Every way RLlib reaches a set's remote workers (sampling, evaluation, weight pushes,
    # restores). ``foreach_env_runner*`` joined ``foreach_worker*`` between 2.40 and 2.44 and
    # replaced it between 2.47 and 2.50: feature detection decides, a name the class does not
    # define is skipped (``defined_targets``).
    "group_remote_call": (
        *(Target(_WORKER_SET, "WorkerSet", name, _WORKER_SET_ERA)
          for name in ("foreach_worker", "foreach_worker_with_id", "foreach_worker_async")),
        *(Target(_ENV_RUNNER_GROUP, "EnvRunnerGroup", name, _ENV_RUNNER_GROUP_ERA)
          for name in ("foreach_worker", "foreach_worker_with_id", "foreach_worker_async",
                       "foreach_env_runner", "foreach_env_runner_with_id",
                       "foreach_env_runner_async",
                       "foreach_env_runner_async_fetch_ready")),
    ),
    "worker_add_policy": (Target(_ROLLOUT_WORKER, "RolloutWorker", "add_policy"),),
    "policy_map_stash": (Target(_POLICY_MAP, "PolicyMap", "_stash_least_used_policy"),),
}


# ---------------------------------------------------------------------------------------------
# Which Ray is this?


def installed_ray_version() -> Version | None:
    """The Ray version without importing Ray (``import ray`` costs seconds)."""
    module = sys.modules.get("ray")
    text = getattr(module, "__version__", None)
    if text is None:
        try:
            text = metadata.version("ray")
        except metadata.PackageNotFoundError:
            return None
    try:
        return Version(str(text))
    except InvalidVersion:
        return None


def ray_supported(version: Version | None = None) -> bool:
    version = version if version is not None else installed_ray_version()
    return version is not None and SUPPORTED_RAY.contains(version, prereleases=True)


def targets_for(version: Version) -> list[tuple[str, Target]]:
    """(role, target) pairs that exist in this Ray release."""
    return [
        (role, target)
        for role, candidates in TARGETS.items()
        for target in candidates
        if target.when.contains(version, prereleases=True)
    ]


def defined_targets(version: Version) -> list[tuple[str, Target]]:
    """The (role, target) pairs of this release whose attribute its RLlib defines (imports the
    target modules)."""
    import importlib

    defined = []
    for role, target in targets_for(version):
        owner = getattr(importlib.import_module(target.module), target.owner, None)
        if isinstance(owner, type) and target.attribute in vars(owner):
            defined.append((role, target))
    return defined


# ---------------------------------------------------------------------------------------------
# Algorithm and worker-set lookups


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
        wanted = {"training": arguments.get("add_to_env_runners") is True,
                  "evaluation": arguments.get("add_to_eval_env_runners") is True}
    else:
        wanted = {"training": True, "evaluation": arguments.get("evaluation_workers") is True}
    return {role: group for role, group in groups(algo).items() if wanted[role]}


def add_to_one_set_kwargs(role: str) -> dict[str, bool] | None:
    """``Algorithm.add_policy`` keywords that add to the ``role`` set only; None where RLlib
    cannot (before 2.40 the training set always gets the policy)."""
    from ray.rllib.algorithms.algorithm import Algorithm

    parameters = _signature(Algorithm.add_policy).parameters
    if "add_to_eval_env_runners" in parameters:
        return {"add_to_env_runners": role == "training",
                "add_to_eval_env_runners": role == "evaluation"}
    return {"evaluation_workers": False} if role == "training" else None


def local_worker(group: Any) -> Any:
    """The group's driver-side RolloutWorker, or None."""
    if group is None:
        return None
    if "local_env_runner" in dir(type(group)):
        return group.local_env_runner
    return group.local_worker()


def num_remote_workers(group: Any) -> int:
    return int(group.num_remote_workers()) if group is not None else 0


class Replies(list[tuple[int, Any]]):
    """``(worker_id, result)`` for every remote worker that answered, in id order, and who did
    not: ``failed`` (the call raised a Ray error: the worker died; RLlib has marked it
    unhealthy) and ``hung`` (no answer within the timeout; the call stays queued there)."""

    def __init__(self, answered: Iterable[tuple[int, Any]] = (), *,
                 failed: dict[int, BaseException] | None = None,
                 hung: Iterable[int] = (), timeout_s: float = 0.0) -> None:
        super().__init__(sorted(answered, key=lambda pair: pair[0]))
        self.failed = dict(failed or {})
        self.hung = sorted(hung)
        self.timeout_s = timeout_s

    @property
    def unreached(self) -> list[int]:
        return sorted({*self.failed, *self.hung})


def foreach_remote(
    group: Any, func: Callable[[Any], Any], *, timeout_seconds: float | None = None
) -> Replies:
    """Run ``func`` on every healthy remote worker and wait at most ``timeout_seconds``
    (default :func:`remote_timeout_s`). ``func`` must not raise (see ``_remote``).

    Through the set's actor manager (the same API from 2.5 to 2.60), not the set's
    ``foreach_*``: the shim's own call triggers no pre-use broadcast, and it needs to know
    which worker did not answer. A worker that dies is marked unhealthy by the manager, as
    for any RLlib call; what to do about it is the caller's (``_faults``)."""
    from . import _busy

    manager = worker_manager(group)
    timeout_s = remote_timeout_s(group) if timeout_seconds is None else timeout_seconds
    if manager is None:
        return Replies(timeout_s=timeout_s)
    called = list(manager.healthy_actor_ids())
    if not called:
        return Replies(timeout_s=timeout_s)
    with _busy.quiet():
        results = manager.foreach_actor(
            func, healthy_only=False, remote_actor_ids=called, timeout_seconds=timeout_s
        )
    answered, failed = [], {}
    for result in results:
        if result.ok:
            answered.append((result.actor_id, result.get()))
        else:
            failed[result.actor_id] = result.get()
    heard = {result.actor_id for result in results}
    return Replies(answered, failed=failed, hung=[i for i in called if i not in heard],
                   timeout_s=timeout_s)


def worker_manager(group: Any) -> Any:
    """The set's ``FaultTolerantActorManager``: ``_worker_manager`` from 2.30, a name-mangled
    ``__worker_manager`` of ``WorkerSet`` before."""
    if group is None:
        return None
    return getattr(group, "_worker_manager", None) or getattr(
        group, "_WorkerSet__worker_manager", None
    )


def group_role(group: Any) -> str:
    """"evaluation" or "training", from the set's own config (``in_evaluation``, 2.5+)."""
    config = getattr(group, "_remote_config", None)
    return "evaluation" if _setting(config, "in_evaluation") is True else "training"


def unhealthy_worker_ids(group: Any) -> list[int]:
    manager = worker_manager(group)
    if manager is None:
        return []
    healthy = set(manager.healthy_actor_ids())
    return sorted(i for i in manager.actors() if i not in healthy)  # no actor_ids() in 2.5


def take_out_of_service(group: Any, worker_id: int) -> None:
    """Mark a remote worker unhealthy, as RLlib does with one that died: RLlib stops using
    it, probes it before each iteration and, once it answers, restores it from the driver's
    state (``restore_workers`` / ``restore_env_runners``)."""
    worker_manager(group).set_actor_state(worker_id, healthy=False)


#: Overrides the timeout of every remote call the shim makes (seconds, > 0).
TIMEOUT_ENV_VAR = "RLLIB_ADDPOLICY_FIX_TIMEOUT_S"
#: The user's health-probe timeout, newest name first (``worker_health_probe_timeout_s`` became
#: ``env_runner_health_probe_timeout_s`` in 2.20); RLlib's 2.5 default when neither is set.
_PROBE_TIMEOUT_SETTINGS = ("env_runner_health_probe_timeout_s", "worker_health_probe_timeout_s")
_DEFAULT_TIMEOUT_S = 60.0


def remote_timeout_s(group: Any) -> float:
    """How long the shim waits for a remote worker: :data:`TIMEOUT_ENV_VAR` if set, else the
    set's health-probe timeout, the time RLlib itself gives a worker to answer."""
    import os

    override = os.environ.get(TIMEOUT_ENV_VAR, "").strip()
    if override:
        try:
            value = float(override)
            if value > 0:
                return value
        except ValueError:
            pass
        logger.warning("rllib_addpolicy_fix: ignoring %s=%r (not a number of seconds > 0)",
                       TIMEOUT_ENV_VAR, override)
    config = getattr(group, "_remote_config", None)
    for name in _PROBE_TIMEOUT_SETTINGS:
        value = _setting(config, name)
        if isinstance(value, (int, float)) and not isinstance(value, bool) and value > 0:
            return float(value)
    return _DEFAULT_TIMEOUT_S


#: Settings under which RLlib carries on without a failed worker: ignore failures
#: (``ignore_worker_failures`` -> ``ignore_env_runner_failures``, 2.20) or restart them
#: (``recreate_failed_workers`` -> ``recreate_failed_env_runners``, 2.20 ->
#: ``restart_failed_env_runners``, 2.40, on by default).
_TOLERANCE_SETTINGS = (
    "ignore_env_runner_failures", "restart_failed_env_runners", "recreate_failed_env_runners",
    "ignore_worker_failures", "recreate_failed_workers",
)


def tolerates_worker_failures(group: Any) -> bool:
    config = getattr(group, "_remote_config", None)
    return any(_setting(config, name) is True for name in _TOLERANCE_SETTINGS)


def _setting(config: Any, name: str) -> Any:
    """A config attribute, or None (deprecated names may raise when read)."""
    try:
        return getattr(config, name, None)
    except Exception:  # noqa: BLE001
        return None


# ---------------------------------------------------------------------------------------------
# Arguments of the wrapped functions


@functools.lru_cache(maxsize=None)
def _signature(func: Callable[..., Any]) -> inspect.Signature:
    return inspect.signature(func)


def bind(func: Callable[..., Any], args: tuple[Any, ...], kwargs: dict[str, Any]) -> dict[str, Any]:
    """Call arguments by name (defaults filled), whatever the release's signature.

    The signature is cached per underlying function, never per bound method (that would keep
    every Algorithm alive).
    """
    owner = getattr(func, "__self__", None)
    function = getattr(func, "__func__", func)
    signature = _signature(function)
    bound = signature.bind(owner, *args, **kwargs) if owner is not None else signature.bind(
        *args, **kwargs
    )
    bound.apply_defaults()
    arguments = dict(bound.arguments)
    if owner is not None:
        arguments.pop(next(iter(signature.parameters)))
    return arguments


#: Keyword that names the weight source of ``sync_weights`` (renamed in 2.7).
SYNC_SOURCE_KWARGS = ("from_worker_or_learner_group", "from_worker_or_trainer")


def sync_weights_source(arguments: dict[str, Any]) -> Any:
    for name in SYNC_SOURCE_KWARGS:
        if arguments.get(name) is not None:
            return arguments[name]
    return None


# ---------------------------------------------------------------------------------------------
# Policies


def loaded_policy(worker: Any, policy_id: str) -> Policy | None:
    """The policy object if it is in the worker's policy cache now, without loading or
    reordering the LRU cache (reading ``policy_map[pid]`` may evict another policy)."""
    return loaded_policy_in_map(getattr(worker, "policy_map", None), policy_id)


def loaded_policy_in_map(policy_map: Any, policy_id: str | None) -> Policy | None:
    if policy_map is None or policy_id is None:
        return None
    cache = getattr(policy_map, "cache", None)
    if isinstance(cache, dict):
        return cache.get(policy_id)
    return policy_map.get(policy_id) if policy_id in policy_map else None


def stashed_state_ref(worker: Any, policy_id: str) -> Any:
    """The object-store ref of a policy's stashed state (the LRU policy map keeps evicted
    policies there), or None."""
    refs = getattr(getattr(worker, "policy_map", None), "_policy_state_refs", None)
    return refs.get(policy_id) if isinstance(refs, dict) else None


def policy_to_stash(policy_map: Any) -> str | None:
    """The id ``PolicyMap._stash_least_used_policy`` is about to evict (its LRU end)."""
    order = getattr(policy_map, "_deque", None)
    return order[0] if order else None


def policy_ids(worker: Any) -> list[str]:
    policy_map = getattr(worker, "policy_map", None)
    return list(policy_map.keys()) if policy_map is not None else []


def trained_in_background(group: Any) -> list[str]:
    """Trained policies of a set whose driver-side worker a learner thread updates between
    iterations; the algorithm pushes their weights to the workers itself, bypassing
    ``sync_weights`` (IMPALA and APPO on the legacy stack: ``LearnerThread`` and its subclasses
    in ``ray.rllib.execution``, every release 2.5-2.60). Empty for the others."""
    learner_thread = getattr(sys.modules.get("ray.rllib.execution.learner_thread"),
                             "LearnerThread", None)
    worker = local_worker(group)
    if learner_thread is None or worker is None:
        return []
    if not any(isinstance(thread, learner_thread) and thread.local_worker is worker
               for thread in threading.enumerate()):
        return []
    return [pid for pid in policy_ids(worker) if is_policy_to_train(worker, pid)]


def is_policy_to_train(worker: Any, policy_id: str) -> bool:
    """RLlib's own reading of ``worker.is_policy_to_train``: ``None`` (no ``policies_to_train``
    configured, e.g. every single-agent config) means every policy is trained."""
    check = getattr(worker, "is_policy_to_train", None)
    return check is None or bool(check(policy_id, None))


def weights_read_from_torch_model(policy: Policy) -> bool:
    """True when ``policy.get_weights()`` is exactly ``policy.model``'s state dict, so tensor
    version counters tell whether the weights changed (no need to read them)."""
    torch_policy_classes: list[Any] = []
    for module_name, class_name in (
        ("ray.rllib.policy.torch_policy_v2", "TorchPolicyV2"),
        ("ray.rllib.policy.torch_policy", "TorchPolicy"),
    ):
        cls = getattr(sys.modules.get(module_name), class_name, None)
        if cls is not None:
            torch_policy_classes.append(cls)
    get_weights = getattr(type(policy), "get_weights", None)
    return any(get_weights is cls.get_weights for cls in torch_policy_classes) and hasattr(
        getattr(policy, "model", None), "parameters"
    )


# ---------------------------------------------------------------------------------------------
# Old-stack configuration (used by the demo and the tests)


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
        config = config.training(_enable_learner_api=False).rl_module(
            _enable_rl_module_api=False
        )
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
            if "evaluation_num_env_runners" in _signature(type(config).evaluation).parameters
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


#: ``fault_tolerance()`` names for "restart failed workers" and "restart delay", newest first:
#: ``restart_failed_env_runners`` (2.40), ``recreate_failed_env_runners`` (2.20),
#: ``recreate_failed_workers`` (2.5). Newer releases keep the old names as raising parameters.
_RESTART_SETTINGS = (
    ("restart_failed_env_runners", "delay_between_env_runner_restarts_s"),
    ("recreate_failed_env_runners", "delay_between_env_runner_restarts_s"),
    ("recreate_failed_workers", "delay_between_worker_restarts_s"),
)


def enable_worker_restarts(config: AlgorithmConfig) -> AlgorithmConfig:
    """Restart failed remote workers at once (the default delay is 60 s)."""
    return worker_fault_settings(config, restarts=True)


def worker_fault_settings(
    config: AlgorithmConfig, *, restarts: bool, probe_timeout_s: float | None = None
) -> AlgorithmConfig:
    """Worker restarts on (at once) or off, and optionally the health-probe timeout, under
    this release's names. Worker failures are not ignored either way."""
    parameters = _signature(type(config).fault_tolerance).parameters
    settings: dict[str, Any] = {}
    for restart, delay in _RESTART_SETTINGS:
        if restart in parameters and delay in parameters:
            settings.update({restart: restarts, delay: 0})
            break
    else:
        raise NotImplementedError("no known worker-restart setting in this Ray release")
    if probe_timeout_s is not None:
        name = next(n for n in _PROBE_TIMEOUT_SETTINGS if n in parameters)
        settings[name] = probe_timeout_s
    return config.fault_tolerance(**settings)


def remote_actors(group: Any) -> dict[int, Any]:
    """The set's remote worker actors by id (for killing one in tests)."""
    manager = worker_manager(group)
    return dict(manager.actors()) if manager is not None else {}


def checkpoint_path(saved: Any) -> str:
    """The directory ``Algorithm.save()`` wrote: a path string up to 2.5, a ``Checkpoint``
    (2.7+) or a ``TrainingResult`` whose ``.checkpoint`` is one (2.20+)."""
    checkpoint = getattr(saved, "checkpoint", saved)
    return str(getattr(checkpoint, "path", checkpoint))
