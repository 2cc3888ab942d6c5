"""Every attribute of RLlib (and ``ray.init``) the shim wraps: where it lives, in which Ray
releases, and with what.

One entry per wrapped attribute, so adding or retiring a target is one edit here. ``when`` is
the range of Ray releases whose RLlib defines the attribute; in that range it is *required*:
if it is missing once its module is imported, the shim undoes every patch and says so (it never
runs half-installed). An ``optional`` entry covers a rename whose exact release is not known
(checked on 2.5.1, 2.10.0, 2.30.0, 2.40.0 and 2.60.0), or a patch the fix itself does not need:
it is wrapped where Ray defines it.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from packaging.specifiers import SpecifierSet
from packaging.version import Version

from . import _adding, _job_env, _trials, _wrappers

#: wrapt's wrapper signature: (wrapped, instance, args, kwargs) -> result.
Wrapper = Callable[[Callable[..., Any], Any, tuple[Any, ...], dict[str, Any]], Any]


@dataclass(frozen=True)
class Patch:
    module: str
    #: The class that holds ``attribute``; "" for a function of the module itself.
    owner: str
    attribute: str
    wrapper: Wrapper = field(compare=False)
    when: SpecifierSet = SpecifierSet()
    #: Installed as a plain function pickled by reference, for methods of classes Ray turns
    #: into actors (an Algorithm in a Tune trial or ``ray.remote(PPO)``); see ``_install``.
    by_reference: bool = False
    optional: bool = False

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

    def applies_to(self, version: Version) -> bool:
        return self.when.contains(version, prereleases=True)


_ALGORITHM = "ray.rllib.algorithms.algorithm"
_ROLLOUT_WORKER = "ray.rllib.evaluation.rollout_worker"
_WORKER_SET = "ray.rllib.evaluation.worker_set"  # the worker set up to 2.29
_ENV_RUNNER_GROUP = "ray.rllib.env.env_runner_group"  # the worker set from 2.30
_POLICY_MAP = "ray.rllib.policy.policy_map"
_TUNE_TRIAL = "ray.tune.experiment.trial"

_EVERY = SpecifierSet()
_WORKER_SET_ERA = SpecifierSet("<2.30")
_ENV_RUNNER_GROUP_ERA = SpecifierSet(">=2.30")
#: ``foreach_env_runner*`` joined ``foreach_worker*`` after 2.40 and replaced it by 2.50.
_FOREACH_WORKER_ERA = SpecifierSet(">=2.30,<2.41")
_RENAMING = SpecifierSet(">=2.41,<2.50")
_FOREACH_ENV_RUNNER_ERA = SpecifierSet(">=2.50")


def _algorithm(
    attribute: str, wrapper: Wrapper, when: SpecifierSet = _EVERY, optional: bool = False
) -> Patch:
    return Patch(
        _ALGORITHM, "Algorithm", attribute, wrapper, when, by_reference=True, optional=optional
    )


def _group(
    module: str,
    owner: str,
    attribute: str,
    wrapper: Wrapper,
    when: SpecifierSet,
    optional: bool = False,
) -> Patch:
    return Patch(module, owner, attribute, wrapper, when, optional=optional)


PATCHES: tuple[Patch, ...] = (
    # Ray's entry point: the processes of a job this driver starts get the shim too (Tune
    # trials and actors that host an Algorithm, on any node).
    Patch("ray", "", "init", _job_env.ray_init),
    # The Algorithm: refuse duplicate ids up front and roll back failed adds; forget removed
    # policies; the shim's figures in each result; nothing pushed while RLlib builds or
    # restores workers; workers Ray restarted behind RLlib's back handed to its restore
    # (``restore_workers`` became ``restore_env_runners`` by 2.50).
    _algorithm("add_policy", _adding.algorithm_add_policy),
    _algorithm("remove_policy", _wrappers.algorithm_remove_policy),
    _algorithm("step", _wrappers.algorithm_step),
    _algorithm("evaluate", _wrappers.algorithm_evaluate),
    *(_algorithm(name, _wrappers.algorithm_sets_up_workers) for name in ("setup", "__setstate__")),
    _algorithm("restore_workers", _wrappers.algorithm_restores_workers),
    _algorithm(
        "restore_env_runners", _wrappers.algorithm_restores_workers, _FOREACH_ENV_RUNNER_ERA
    ),
    _algorithm(
        "restore_env_runners", _wrappers.algorithm_restores_workers, _RENAMING, optional=True
    ),
    # The driver's RolloutWorker: fills the new policy's state in before the remote adds.
    Patch(_ROLLOUT_WORKER, "RolloutWorker", "add_policy", _adding.worker_add_policy),
    # The worker set: remote adds carry the driver's state; RLlib's syncs are recorded.
    *(
        _group(module, owner, "add_policy", _adding.group_add_policy, era)
        for module, owner, era in (
            (_WORKER_SET, "WorkerSet", _WORKER_SET_ERA),
            (_ENV_RUNNER_GROUP, "EnvRunnerGroup", _ENV_RUNNER_GROUP_ERA),
        )
    ),
    *(
        _group(module, owner, "sync_weights", _wrappers.group_sync_weights, era)
        for module, owner, era in (
            (_WORKER_SET, "WorkerSet", _WORKER_SET_ERA),
            (_ENV_RUNNER_GROUP, "EnvRunnerGroup", _ENV_RUNNER_GROUP_ERA),
        )
    ),
    # Every way RLlib reaches a set's remote workers: the pre-use broadcast.
    *(
        _group(_WORKER_SET, "WorkerSet", name, _wrappers.group_remote_call, _WORKER_SET_ERA)
        for name in ("foreach_worker", "foreach_worker_with_id", "foreach_worker_async")
    ),
    *(
        _group(
            _ENV_RUNNER_GROUP, "EnvRunnerGroup", name, _wrappers.group_remote_call, era, optional
        )
        for names, era, optional in (
            (
                ("foreach_worker", "foreach_worker_with_id", "foreach_worker_async"),
                _FOREACH_WORKER_ERA,
                False,
            ),
            (
                (
                    "foreach_env_runner",
                    "foreach_env_runner_async",
                    "foreach_env_runner_async_fetch_ready",
                ),
                _FOREACH_ENV_RUNNER_ERA,
                False,
            ),
            (
                (
                    "foreach_worker",
                    "foreach_worker_with_id",
                    "foreach_worker_async",
                    "foreach_env_runner",
                    "foreach_env_runner_with_id",
                    "foreach_env_runner_async",
                    "foreach_env_runner_async_fetch_ready",
                ),
                _RENAMING,
                True,
            ),
            (("foreach_env_runner_with_id",), _FOREACH_ENV_RUNNER_ERA, True),
        )
        for name in names
    ),
    # The driver's LRU policy cache: a policy's record follows it into the stash.
    Patch(_POLICY_MAP, "PolicyMap", "_stash_least_used_policy", _wrappers.policy_map_stash),
    # Tune, in the driver: a trial whose results lack the fix's figures runs without it. Not
    # needed for the fix itself: optional, so a Tune that moved it leaves the rest in effect.
    Patch(_TUNE_TRIAL, "Trial", "update_last_result", _trials.trial_result, optional=True),
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
