"""Calling a worker set's remote workers, bounded, and RLlib's fault-tolerance settings under
each release's names."""

from __future__ import annotations

import logging
import os
from collections.abc import Callable, Iterable
from typing import Any

logger = logging.getLogger("rllib_addpolicy_fix")


class Replies(list[tuple[int, Any]]):
    """``(worker_id, result)`` for every remote worker that answered, in id order, and who did
    not: ``failed`` (the call raised a Ray error: the worker died; RLlib has marked it
    unhealthy) and ``hung`` (no answer within the timeout; the call stays queued there)."""

    def __init__(
        self,
        answered: Iterable[tuple[int, Any]] = (),
        *,
        failed: dict[int, BaseException] | None = None,
        hung: Iterable[int] = (),
        timeout_s: float = 0.0,
    ) -> None:
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
    from .. import _busy

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
    return Replies(
        answered, failed=failed, hung=[i for i in called if i not in heard], timeout_s=timeout_s
    )


def worker_manager(group: Any) -> Any:
    """The set's ``FaultTolerantActorManager``: ``_worker_manager`` from 2.30, a name-mangled
    ``__worker_manager`` of ``WorkerSet`` before."""
    if group is None:
        return None
    return getattr(group, "_worker_manager", None) or getattr(
        group, "_WorkerSet__worker_manager", None
    )


def group_role(group: Any) -> str:
    """ "evaluation" or "training", from the set's own config (``in_evaluation``, 2.5+)."""
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


def restart_counts(group: Any) -> dict[int, int]:
    """How many times Ray has restarted each remote worker's actor (a new process each time),
    by worker id, read from Ray's actor table in the GCS: no call reaches a worker, so a
    worker that is down or busy costs nothing. ``ray._private.state.actors(actor_id=...)`` and
    its ``NumRestarts`` are the same from 2.5 to 2.60 (a private API: a worker whose entry
    cannot be read is left out)."""
    manager = worker_manager(group)
    if manager is None:
        return {}
    from ray._private import state

    counts: dict[int, int] = {}
    for worker_id, actor in manager.actors().items():
        actor_id = getattr(actor, "_actor_id", None)
        info = state.actors(actor_id=actor_id.hex()) if actor_id is not None else None
        restarts = info.get("NumRestarts") if isinstance(info, dict) else None
        if isinstance(restarts, int):
            counts[worker_id] = restarts
    return counts


#: Overrides the timeout of every remote call the shim makes (seconds, > 0).
TIMEOUT_ENV_VAR = "RLLIB_ADDPOLICY_FIX_TIMEOUT_S"
#: The user's health-probe timeout, newest name first (``worker_health_probe_timeout_s`` became
#: ``env_runner_health_probe_timeout_s`` in 2.20); RLlib's 2.5 default when neither is set.
PROBE_TIMEOUT_SETTINGS = ("env_runner_health_probe_timeout_s", "worker_health_probe_timeout_s")
_DEFAULT_TIMEOUT_S = 60.0


_rejected_overrides: set[str] = set()


def remote_timeout_s(group: Any) -> float:
    """How long the shim waits for a remote worker: :data:`TIMEOUT_ENV_VAR` if set, else the
    set's health-probe timeout, the time RLlib itself gives a worker to answer."""
    override = os.environ.get(TIMEOUT_ENV_VAR, "").strip()
    if override:
        try:
            value = float(override)
            if value > 0:
                return value
        except ValueError:
            pass
        if override not in _rejected_overrides:  # once per value: this runs before every call
            _rejected_overrides.add(override)
            logger.warning(
                "rllib_addpolicy_fix: ignoring %s=%r (not a number of seconds > 0)",
                TIMEOUT_ENV_VAR,
                override,
            )
    config = getattr(group, "_remote_config", None)
    for name in PROBE_TIMEOUT_SETTINGS:
        value = _setting(config, name)
        if isinstance(value, (int, float)) and not isinstance(value, bool) and value > 0:
            return float(value)
    return _DEFAULT_TIMEOUT_S


#: Settings under which RLlib carries on without a failed worker: ignore failures
#: (``ignore_worker_failures`` -> ``ignore_env_runner_failures``, 2.20) or restart them
#: (``recreate_failed_workers`` -> ``recreate_failed_env_runners``, 2.20 ->
#: ``restart_failed_env_runners``, 2.40, on by default).
_TOLERANCE_SETTINGS = (
    "ignore_env_runner_failures",
    "restart_failed_env_runners",
    "recreate_failed_env_runners",
    "ignore_worker_failures",
    "recreate_failed_workers",
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
