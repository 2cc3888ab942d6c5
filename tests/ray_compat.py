"""What the tests need to know about Ray releases beyond what the shim itself needs: the tested
releases, fault-tolerance settings, checkpoint paths, keywords that moved. Everything the shim
needs is in ``rllib_addpolicy_fix._compat``; tests take version differences from these two
places only."""

from __future__ import annotations

import contextlib
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any

import pytest
from packaging.version import Version

from rllib_addpolicy_fix import _compat
from rllib_addpolicy_fix._compat import releases as _releases

#: Releases CI runs the behaviour tests on, oldest first.
TESTED_RAY = tuple(_releases.TESTED_RAY)
OLDEST, NEWEST = TESTED_RAY[0], TESTED_RAY[-1]
RUNNING = str(_compat.installed_ray_version())

# Where a test runs, to keep CI within its time on a 2-core machine (docs/reading-the-code.md,
# "Tests"). Every tested release runs the core tests, a Tune trial by name, an Algorithm actor
# and the single-agent transparency cells; the oldest and the newest, where the API differs
# most, run the rest; the newest alone runs RLlib-alone controls (``shim_modes``) and what does not
# depend on the release.
#: Runs on the oldest and the newest tested Ray only.
at_the_ends = pytest.mark.skipif(
    RUNNING not in (OLDEST, NEWEST), reason="runs on the oldest and the newest tested Ray"
)
#: Runs once, on the newest tested Ray.
newest_only = pytest.mark.skipif(RUNNING != NEWEST, reason="runs on the newest tested Ray")

#: RLlib's own bugs on some tested releases, which tests of those flows skip.
#: Restarted as the same Ray actor, a PPO worker dies in RLlib's GAE post-processing
#: ("operands could not be broadcast together with shapes (10,) (9,)"), shim or not.
RESTARTED_PPO_WORKERS_CRASH = RUNNING in ("2.10.0", "2.30.0")
#: Ray 2.60's validation turns the replay buffer type into a class, which its own old-stack
#: buffer set-up then fails on, so legacy DQN cannot be built there.
LEGACY_DQN_BUILDS = RUNNING != "2.60.0"
#: ``Algorithm.set_weights`` naming a policy the driver lacks: RLlib raises KeyError up to
#: 2.30; from 2.40 it skips the id with a warning.
SET_WEIGHTS_SKIPS_UNKNOWN_IDS = Version(RUNNING) >= Version("2.40")
#: The newest tested release where legacy DQN builds: its RLlib-alone control runs there.
NEWEST_WITH_LEGACY_DQN = "2.40.0"
#: The oldest and the newest release where legacy DQN builds.
DQN_TESTED = LEGACY_DQN_BUILDS and RUNNING in (OLDEST, NEWEST_WITH_LEGACY_DQN)


#: ``fault_tolerance()`` names for "restart failed workers" and "restart delay", newest first:
#: ``restart_failed_env_runners`` (2.40), ``recreate_failed_env_runners`` (2.20),
#: ``recreate_failed_workers`` (2.5). Newer releases keep the old names as raising parameters.
_RESTART_SETTINGS = (
    ("restart_failed_env_runners", "delay_between_env_runner_restarts_s"),
    ("recreate_failed_env_runners", "delay_between_env_runner_restarts_s"),
    ("recreate_failed_workers", "delay_between_worker_restarts_s"),
)


def enable_worker_restarts(config: Any) -> Any:
    """Restart failed remote workers at once (the default delay is 60 s)."""
    return worker_fault_settings(config, restarts=True)


def worker_fault_settings(
    config: Any, *, restarts: bool, probe_timeout_s: float | None = None
) -> Any:
    """Worker restarts on (at once) or off, and optionally the health-probe timeout, under
    this release's names. Worker failures are not ignored either way."""
    parameters = _compat.signature(type(config).fault_tolerance).parameters
    settings: dict[str, Any] = {}
    for restart, delay in _RESTART_SETTINGS:
        if restart in parameters and delay in parameters:
            settings.update({restart: restarts, delay: 0})
            break
    else:
        raise NotImplementedError("no known worker-restart setting in this Ray release")
    if probe_timeout_s is not None:
        name = next(n for n in _compat.PROBE_TIMEOUT_SETTINGS if n in parameters)
        settings[name] = probe_timeout_s
    return config.fault_tolerance(**settings)


def remote_actors(group: Any) -> dict[int, Any]:
    """The set's remote worker actors by id (for killing one in tests)."""
    manager = _compat.worker_manager(group)
    return dict(manager.actors()) if manager is not None else {}


def crash_first_worker(group: Any) -> None:
    """The set's lowest-id remote worker exits in the middle of a call from the set's actor
    manager, so RLlib sees it die: it marks the worker unhealthy and restores it from the
    driver's state once Ray has restarted it.

    Not ``ray.kill`` between calls: Ray may restart the actor before the next call reaches
    it, which then succeeds, and RLlib never learns that the new process lost every policy
    added at run time (it restores only workers it saw fail; so does the shim, through it).
    """
    import os

    def exit_now(worker: Any) -> None:
        os._exit(1)

    manager = _compat.worker_manager(group)
    worker_id = min(remote_actors(group))
    results = list(
        manager.foreach_actor(
            exit_now, healthy_only=False, remote_actor_ids=[worker_id], timeout_seconds=60.0
        )
    )
    assert results and not any(result.ok for result in results), "the worker did not exit"
    assert worker_id not in manager.healthy_actor_ids(), "RLlib did not see the worker die"


def restart_behind_rllibs_back(group: Any) -> int:
    """The set's lowest-id remote worker's process is killed between calls and Ray restarts it
    (the actor allows restarts), as when a worker dies while the driver learns; returns its id
    once the new process answers a call made to the actor directly, not through RLlib, whose
    actor manager sees nothing and still calls the worker healthy."""
    import time

    import ray

    import helpers

    worker_id = min(remote_actors(group))
    actor = remote_actors(group)[worker_id]
    before = ray.get(actor.apply.remote(helpers.process_id), timeout=60)
    restarts = _compat.restart_counts(group).get(worker_id, 0)
    ray.kill(actor, no_restart=False)
    deadline = time.monotonic() + 120
    while time.monotonic() < deadline:
        try:
            after = ray.get(actor.apply.remote(helpers.process_id), timeout=30)
        except ray.exceptions.RayError:
            time.sleep(0.2)
            continue
        if after != before:
            break
    else:
        raise AssertionError(f"Ray did not restart remote worker {worker_id}")
    assert _compat.restart_counts(group).get(worker_id) == restarts + 1
    assert worker_id in _compat.worker_manager(group).healthy_actor_ids(), "RLlib noticed"
    return worker_id


def checkpoint_path(saved: Any) -> str:
    """The directory ``Algorithm.save()`` wrote: a path string up to 2.5, a ``Checkpoint``
    (2.7+) or a ``TrainingResult`` whose ``.checkpoint`` is one (2.20+)."""
    checkpoint = getattr(saved, "checkpoint", saved)
    return str(getattr(checkpoint, "path", checkpoint))


def add_to_one_set_kwargs(role: str) -> dict[str, bool] | None:
    """``Algorithm.add_policy`` keywords that add to the ``role`` set only; None where RLlib
    cannot (before 2.40 the training set always gets the policy)."""
    from ray.rllib.algorithms.algorithm import Algorithm

    parameters = _compat.signature(Algorithm.add_policy).parameters
    if "add_to_eval_env_runners" in parameters:
        return {
            "add_to_env_runners": role == "training",
            "add_to_eval_env_runners": role == "evaluation",
        }
    return {"evaluation_workers": False} if role == "training" else None


def foreach_remote_worker(group: Any, func: Any) -> list[Any]:
    """``func`` on every remote worker through the worker set's own ``foreach_*``, as a script
    calls it (so the shim's pre-use work runs first), whatever the release names it."""
    import inspect

    if hasattr(group, "foreach_env_runner"):
        return list(group.foreach_env_runner(func, local_env_runner=False))
    if "local_env_runner" in inspect.signature(group.foreach_worker).parameters:  # 2.40
        return list(group.foreach_worker(func, local_env_runner=False))
    return list(group.foreach_worker(func, local_worker=False))


def shim_modes(control_runs_here: bool, where: str) -> list[Any]:
    """Fixture params: "installed", and the control "uninstalled" (RLlib alone) where
    ``control_runs_here``."""
    control = pytest.mark.skipif(not control_runs_here, reason=f"the control runs on {where}")
    return ["installed", pytest.param("uninstalled", marks=control)]


def _sampling(func: Any) -> bool:
    """Whether an actor-manager call samples: RLlib's function (inside the fix's wrapper, if
    any) calls a worker's ``sample``."""
    inner = getattr(func, "keywords", {}).get("_rllib_addpolicy_fix_inner", func)
    if isinstance(inner, str):
        return inner.startswith("sample")
    return "sample" in getattr(getattr(inner, "__code__", None), "co_names", ())


@dataclass
class Restarts:
    """The restarts :func:`restart_before_sampling` made, by worker id."""

    ids: list[int] = field(default_factory=list)
    this_iteration: int = 0

    def next_iteration(self) -> None:
        self.this_iteration = 0


@contextlib.contextmanager
def restart_before_sampling(group: Any, *, per_iteration: int = 1) -> Iterator[Restarts]:
    """Inside RLlib's actor manager, after every driver-side check, right before the first
    ``per_iteration`` sample calls of each iteration (``Restarts.next_iteration``) are sent:
    the set's lowest-id remote worker is killed and Ray restarts it, so the sample call reaches
    a new process built from the config alone."""
    manager = _compat.worker_manager(group)
    name = next(
        n
        for n in ("_call_actors", "_FaultTolerantActorManager__call_actors")
        if hasattr(manager, n)
    )
    original = getattr(manager, name)
    restarts = Restarts()

    def call_actors(*args: Any, **kwargs: Any) -> Any:
        func = kwargs.get("func", args[0] if args else None)
        funcs = func if isinstance(func, list) else [func]
        if any(_sampling(f) for f in funcs) and restarts.this_iteration < per_iteration:
            restarts.this_iteration += 1
            restarts.ids.append(restart_behind_rllibs_back(group))
        return original(*args, **kwargs)

    setattr(manager, name, call_actors)
    try:
        yield restarts
    finally:
        vars(manager).pop(name, None)
