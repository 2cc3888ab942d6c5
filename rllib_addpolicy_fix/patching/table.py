"""Every attribute of RLlib (and Ray) the fix wraps: where it lives, in which Ray releases, and
with what.

One entry per wrapped attribute, so adding or retiring a target is one edit here. ``required``
is the range of Ray releases whose RLlib defines the attribute; in that range, if it is missing
once its module is imported, the shim undoes every patch and says so (it never runs
half-installed). ``optional`` is a range where the attribute is wrapped if it is there and its
absence is no fault: a rename whose exact release is not known (checked on 2.5.1, 2.10.0,
2.30.0, 2.40.0 and 2.60.0), or a patch the fix itself does not need.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from packaging.specifiers import SpecifierSet
from packaging.version import Version

from ..activation import job_env
from . import actor_manager, adding, algorithm, tune_trial, worker_set

#: wrapt's wrapper signature: (wrapped, instance, args, kwargs) -> result.
Wrapper = Callable[[Callable[..., Any], Any, tuple[Any, ...], dict[str, Any]], Any]


@dataclass(frozen=True)
class Patch:
    module: str
    #: The class that holds ``attribute``; "" for a function of the module itself.
    owner: str
    attribute: str
    wrapper: Wrapper = field(compare=False)
    #: Releases whose RLlib must define the attribute (None: none must).
    required: SpecifierSet | None = SpecifierSet()  # every release
    #: Releases where it is wrapped if defined, and its absence is no fault.
    optional: SpecifierSet | None = None
    #: Installed as a plain function pickled by reference, for methods of classes Ray turns
    #: into actors (an Algorithm in a Tune trial or ``ray.remote(PPO)``); see ``install``.
    by_reference: bool = False

    @property
    def name(self) -> str:
        return ".".join(part for part in (self.module, self.owner, self.attribute) if part)

    def holder(self, module: Any) -> Any:
        """The object ``attribute`` is set on: the owner class, or the module itself."""
        return getattr(module, self.owner, None) if self.owner else module

    def defined_in(self, module: Any) -> bool:
        holder = self.holder(module)
        if self.owner and not isinstance(holder, type):
            return False
        return holder is not None and self.attribute in vars(holder)

    def required_in(self, version: Version) -> bool:
        return self.required is not None and self.required.contains(version, prereleases=True)

    def applies_to(self, version: Version) -> bool:
        return self.required_in(version) or (
            self.optional is not None and self.optional.contains(version, prereleases=True)
        )


_ALGORITHM = "ray.rllib.algorithms.algorithm"
_ROLLOUT_WORKER = "ray.rllib.evaluation.rollout_worker"
_WORKER_SET = "ray.rllib.evaluation.worker_set"  # the worker set up to 2.29
_ENV_RUNNER_GROUP = "ray.rllib.env.env_runner_group"  # the worker set from 2.30
_POLICY_MAP = "ray.rllib.policy.policy_map"
_ACTOR_MANAGER = "ray.rllib.utils.actor_manager"
_TUNE_TRIAL = "ray.tune.experiment.trial"

_EVERY = SpecifierSet()
_WORKER_SET_ERA = SpecifierSet("<2.30")
_ENV_RUNNER_GROUP_ERA = SpecifierSet(">=2.30")
#: ``foreach_env_runner*`` joined ``foreach_worker*`` after 2.40 and replaced it by 2.50;
#: ``restore_env_runners`` joined ``restore_workers`` in the same window.
_FOREACH_WORKER_ERA = SpecifierSet(">=2.30,<2.41")
_RENAMING = SpecifierSet(">=2.41,<2.50")
_FOREACH_ENV_RUNNER_ERA = SpecifierSet(">=2.50")


def _algorithm(
    attribute: str,
    wrapper: Wrapper,
    required: SpecifierSet | None = _EVERY,
    optional: SpecifierSet | None = None,
) -> Patch:
    return Patch(_ALGORITHM, "Algorithm", attribute, wrapper, required, optional, by_reference=True)


def _worker_set(attribute: str, wrapper: Wrapper) -> Patch:
    return Patch(_WORKER_SET, "WorkerSet", attribute, wrapper, _WORKER_SET_ERA)


def _env_runner_group(
    attribute: str,
    wrapper: Wrapper,
    required: SpecifierSet | None = _ENV_RUNNER_GROUP_ERA,
    optional: SpecifierSet | None = None,
) -> Patch:
    return Patch(_ENV_RUNNER_GROUP, "EnvRunnerGroup", attribute, wrapper, required, optional)


_pre_use = worker_set.group_remote_call

PATCHES: tuple[Patch, ...] = (
    # Ray's entry point: the processes of a job this driver starts get the shim too (Tune
    # trials and actors that host an Algorithm, on any node).
    Patch("ray", "", "init", job_env.ray_init),
    # The Algorithm: refuse duplicate ids up front and roll back failed adds; forget removed
    # policies; the shim's figures in each result; nothing pushed while RLlib builds or
    # restores workers; workers Ray restarted behind RLlib's back handed to its restore.
    _algorithm("add_policy", adding.algorithm_add_policy),
    _algorithm("remove_policy", algorithm.algorithm_remove_policy),
    _algorithm("step", algorithm.algorithm_step),
    _algorithm("evaluate", algorithm.algorithm_evaluate),
    _algorithm("setup", algorithm.algorithm_sets_up_workers),
    _algorithm("__setstate__", algorithm.algorithm_sets_up_workers),
    _algorithm("restore_workers", algorithm.algorithm_restores_workers),
    _algorithm(
        "restore_env_runners",
        algorithm.algorithm_restores_workers,
        required=_FOREACH_ENV_RUNNER_ERA,
        optional=_RENAMING,
    ),
    # The driver's RolloutWorker: fills the new policy's state in before the remote adds.
    Patch(_ROLLOUT_WORKER, "RolloutWorker", "add_policy", adding.worker_add_policy),
    # The worker set: remote adds carry the driver's state; RLlib's syncs are recorded; every
    # way RLlib reaches the remote workers gets the pre-use broadcast first.
    _worker_set("add_policy", adding.group_add_policy),
    _worker_set("sync_weights", worker_set.group_sync_weights),
    _worker_set("foreach_worker", _pre_use),
    _worker_set("foreach_worker_with_id", _pre_use),
    _worker_set("foreach_worker_async", _pre_use),
    _env_runner_group("add_policy", adding.group_add_policy),
    _env_runner_group("sync_weights", worker_set.group_sync_weights),
    _env_runner_group("foreach_worker", _pre_use, required=_FOREACH_WORKER_ERA, optional=_RENAMING),
    _env_runner_group(
        "foreach_worker_with_id", _pre_use, required=_FOREACH_WORKER_ERA, optional=_RENAMING
    ),
    _env_runner_group(
        "foreach_worker_async", _pre_use, required=_FOREACH_WORKER_ERA, optional=_RENAMING
    ),
    _env_runner_group(
        "foreach_env_runner", _pre_use, required=_FOREACH_ENV_RUNNER_ERA, optional=_RENAMING
    ),
    _env_runner_group(
        "foreach_env_runner_async", _pre_use, required=_FOREACH_ENV_RUNNER_ERA, optional=_RENAMING
    ),
    _env_runner_group(
        "foreach_env_runner_async_fetch_ready",
        _pre_use,
        required=_FOREACH_ENV_RUNNER_ERA,
        optional=_RENAMING,
    ),
    _env_runner_group(
        "foreach_env_runner_with_id", _pre_use, required=None, optional=SpecifierSet(">=2.41")
    ),
    # RLlib's actor manager, where each call to a set's remote workers is made: the check at
    # the point of use rides along, and the audit comes back on synchronous results.
    Patch(
        _ACTOR_MANAGER,
        "FaultTolerantActorManager",
        "foreach_actor",
        actor_manager.manager_foreach_actor,
    ),
    Patch(
        _ACTOR_MANAGER,
        "FaultTolerantActorManager",
        "foreach_actor_async",
        actor_manager.manager_foreach_actor_async,
    ),
    Patch(
        _ACTOR_MANAGER,
        "FaultTolerantActorManager",
        "fetch_ready_async_reqs",
        actor_manager.manager_fetch_ready_async_reqs,
    ),
    # The driver's LRU policy cache: a policy's record follows it into the stash.
    Patch(_POLICY_MAP, "PolicyMap", "_stash_least_used_policy", worker_set.policy_map_stash),
    # Tune, in the driver: a trial whose results lack the fix's figures runs without it. Not
    # needed for the fix itself: optional, so a Tune that moved it leaves the rest in effect.
    Patch(
        _TUNE_TRIAL,
        "Trial",
        "update_last_result",
        tune_trial.trial_result,
        required=None,
        optional=SpecifierSet(),
    ),
)


def patches_for(version: Version) -> list[Patch]:
    return [patch for patch in PATCHES if patch.applies_to(version)]


def defined(version: Version) -> list[Patch]:
    """The patches of this release whose attribute its RLlib defines (imports their modules)."""
    import importlib

    return [
        patch
        for patch in patches_for(version)
        if patch.defined_in(importlib.import_module(patch.module))
    ]
