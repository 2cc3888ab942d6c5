"""The shim's calls to remote workers: bounded, and what happens to a worker that does not apply
what it was sent.

RLlib's own calls to workers are bounded and feed its fault tolerance; the shim's calls must do
the same, or one stuck worker would hang ``train()`` where RLlib alone goes on. So every shim
call goes through :func:`foreach_remote`, bounded by :func:`remote_timeout_s`, and a worker that
does not apply a broadcast in time is treated like one that died (:func:`settle`): taken out of
service. RLlib then probes it before each iteration and, once it answers, restores it from the
driver's state, every snapshot included, so it never samples a stale one. Whether training goes
on without it is the user's setting: with restarts or ignored failures it does (one warning
names the worker and the policies); otherwise the error is raised, RLlib's own for a dead
worker and :class:`WorkerTimeoutError` for a stuck one.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from typing import Any

from .. import _compat, _settings
from .._guard import WorkerFault, logger
from . import this_thread


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
    (default :func:`remote_timeout_s`). ``func`` must not raise (see ``remote``).

    Through the set's actor manager (the same API from 2.5 to 2.60), not the set's
    ``foreach_*``: the shim's own call triggers no pre-use broadcast, and it needs to know
    which worker did not answer. A worker that dies is marked unhealthy by the manager, as
    for any RLlib call; what to do about it is :func:`settle`'s."""
    manager = _compat.worker_manager(group)
    timeout_s = remote_timeout_s(group) if timeout_seconds is None else timeout_seconds
    if manager is None:
        return Replies(timeout_s=timeout_s)
    called = list(manager.healthy_actor_ids())
    if not called:
        return Replies(timeout_s=timeout_s)
    with this_thread.quiet():
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


def remote_timeout_s(group: Any) -> float:
    """How long the shim waits for a remote worker: ``RLLIB_ADDPOLICY_FIX_TIMEOUT_S`` if set,
    else the set's health-probe timeout, the time RLlib itself gives a worker to answer."""
    override = _settings.timeout_override_s()
    return override if override is not None else _compat.probe_timeout_s(group)


class WorkerTimeoutError(TimeoutError):
    """A remote worker did not apply the driver's weights within the timeout, and the
    algorithm's config does not let training go on without a failed worker."""


def settle(group: Any, replies: Replies, what: str) -> None:
    """Hand the workers that did not apply ``what`` to RLlib's fault handling; raises
    :class:`WorkerFault` when the algorithm does not tolerate failed workers."""
    if not replies.unreached:
        return
    for worker_id in replies.hung:
        _compat.take_out_of_service(group, worker_id)
    role = _compat.group_role(group)
    if not _compat.tolerates_worker_failures(group):
        if replies.failed:
            raise WorkerFault(next(iter(replies.failed.values())))  # RLlib's own error
        raise WorkerFault(
            WorkerTimeoutError(
                f"rllib_addpolicy_fix: remote worker(s) {replies.hung} of the {role} set did not "
                f"apply {what} within {replies.timeout_s:g} s. RLlib's health-probe timeout sets "
                f"this limit; {_settings.TIMEOUT_ENV_VAR} overrides it. To train on without a "
                "stuck or dead worker, turn on worker restarts or ignore worker failures in "
                "fault_tolerance()."
            )
        )
    for worker_id in replies.unreached:
        how = (
            "died"
            if worker_id in replies.failed
            else f"did not answer within {replies.timeout_s:g} s"
        )
        logger.warning(
            "rllib_addpolicy_fix: remote worker %s of the %s set %s before applying %s; it is "
            "out of service until RLlib restores it from the driver's state.",
            worker_id,
            role,
            how,
            what,
        )
