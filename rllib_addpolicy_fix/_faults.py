"""What happens when a remote worker does not apply what the shim sent it.

RLlib's own calls to workers are bounded and feed its fault tolerance; the shim's calls must do
the same, or one stuck worker would hang ``train()`` where RLlib alone goes on. So every shim
call is bounded (``_compat.remote_timeout_s``), and a worker that does not apply a broadcast in
time is treated like one that died: taken out of service. RLlib then probes it before each
iteration and, once it answers, restores it from the driver's state, every snapshot included,
so it never samples a stale one. Whether training goes on without it is the user's setting:
with restarts or ignored failures it does (one warning names the worker and the policies);
otherwise the error is raised, RLlib's own for a dead worker and :class:`WorkerTimeoutError`
for a stuck one.
"""

from __future__ import annotations

import logging
from typing import Any

from . import _compat

logger = logging.getLogger("rllib_addpolicy_fix")


class WorkerTimeoutError(TimeoutError):
    """A remote worker did not apply the driver's weights within the timeout, and the
    algorithm's config does not let training go on without a failed worker."""


class WorkerFault(Exception):
    """Carries a worker's failure past the shim's own-work guard (which logs and swallows
    failures of the shim itself) to the user, unchanged."""

    def __init__(self, error: BaseException) -> None:
        super().__init__(str(error))
        self.error = error


def settle(group: Any, replies: _compat.Replies, what: str) -> None:
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
                f"this limit; {_compat.TIMEOUT_ENV_VAR} overrides it. To train on without a stuck "
                "or dead worker, turn on worker restarts or ignore worker failures in "
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
