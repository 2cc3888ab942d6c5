"""A worker set's remote workers as RLlib's actor manager keeps them (health, restarts), and
RLlib's fault-tolerance settings under each release's names."""

from __future__ import annotations

from typing import Any


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


#: The user's health-probe timeout, newest name first (``worker_health_probe_timeout_s`` became
#: ``env_runner_health_probe_timeout_s`` in 2.20); RLlib's 2.5 default when neither is set.
PROBE_TIMEOUT_SETTINGS = ("env_runner_health_probe_timeout_s", "worker_health_probe_timeout_s")
_DEFAULT_PROBE_TIMEOUT_S = 60.0


def probe_timeout_s(group: Any) -> float:
    """The set's health-probe timeout: the time RLlib itself gives a remote worker to answer."""
    config = getattr(group, "_remote_config", None)
    for name in PROBE_TIMEOUT_SETTINGS:
        value = _setting(config, name)
        if isinstance(value, (int, float)) and not isinstance(value, bool) and value > 0:
            return float(value)
    return _DEFAULT_PROBE_TIMEOUT_S


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


def take_audits(results: Any, attribute: str, take: Any) -> None:
    """Take the audit figures off the sample batches an actor-manager call returned: each
    batch that carries them as ``attribute`` (``remote_check.AUDITED``) loses it, and
    ``take(figures)`` is called. ``RemoteCallResults.result_or_errors`` holds a ``CallResult``
    per call, whose ``ok`` and ``get()`` give the result (2.5 to 2.60 alike); a result is the
    batch or a tuple that starts with it. Never raises."""
    for call in getattr(results, "result_or_errors", None) or ():
        try:
            value = call.get() if call.ok else None
            batch = value[0] if isinstance(value, tuple) and value else value
            figures = vars(batch).pop(attribute, None) if hasattr(batch, "__dict__") else None
            if isinstance(figures, dict):
                take(figures)
        except Exception:  # noqa: BLE001 - the figures are the fix's own: never RLlib's
            continue


def samples_travel_as_refs(group: Any) -> bool:
    """Whether RLlib fetches this set's asynchronous sample results as object refs and hands
    them on unread: legacy IMPALA/APPO with aggregation workers (``num_aggregation_workers``
    > 0; up to 2.40 ``return_object_refs=use_tree_aggregation``; later releases deprecate it
    and always fetch the batches)."""
    count = _setting(getattr(group, "_remote_config", None), "num_aggregation_workers")
    return isinstance(count, int) and not isinstance(count, bool) and count > 0
