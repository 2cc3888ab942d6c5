"""The shim's own work never becomes the user's failure: it is guarded, and said once.

Each wrapper does its own work inside :func:`own_work`. Should that work fail, the failure is
logged once and RLlib's call runs exactly as it would without the shim. Errors the shim raises
on purpose (a duplicate id, an unsendable ``policies_to_train``) are built inside and raised
outside the guard. A remote worker's failure is not the shim's: it travels as a
:class:`WorkerFault` and reaches the user as RLlib raises it (:func:`worker_errors_raised`).

Every module of the fix logs to :data:`logger`, and says a warning that could repeat once per
process through :func:`warn_once`. Standard library only: every other module may use this one.
"""

from __future__ import annotations

import contextlib
import logging
from collections.abc import Iterator

#: The fix's one logger (``rllib_addpolicy_fix.remote`` on the workers, see ``syncing/remote``).
logger = logging.getLogger("rllib_addpolicy_fix")

#: Keys of the warnings already logged in this process.
warned: set[str] = set()


def warn_once(key: str, message: str, *args: object) -> None:
    if key not in warned:
        warned.add(key)
        logger.warning(message, *args)


class WorkerFault(Exception):
    """Carries a worker's failure past the shim's own-work guard (which logs and swallows
    failures of the shim itself) to the user, unchanged."""

    def __init__(self, error: BaseException) -> None:
        super().__init__(str(error))
        self.error = error


@contextlib.contextmanager
def worker_errors_raised() -> Iterator[None]:
    """A worker's failure inside leaves as the error RLlib (or the shim) raised for it
    (:func:`own_work` does the same before it swallows the shim's own failures)."""
    try:
        yield
    except WorkerFault as fault:
        raise fault.error from None


@contextlib.contextmanager
def own_work(what: str) -> Iterator[None]:
    """Swallow (and log once per ``what``) a failure of the shim's own work: it must never
    become the user's failure."""
    try:
        yield
    except WorkerFault as fault:  # a worker's failure, not the shim's: RLlib's way
        raise fault.error from None
    except Exception:  # noqa: BLE001 - the documented contract: log, never raise
        if what not in warned:
            warned.add(what)
            logger.warning(
                "rllib_addpolicy_fix: %s failed; RLlib's own call went ahead unchanged, so the fix "
                "may not be in effect for it (remote workers may hold stale weights until the next "
                "successful broadcast). Please report this with the traceback below.",
                what,
                exc_info=True,
            )


def on_old_stack(uses_old_stack: bool) -> bool:
    if not uses_old_stack:
        warn_once(
            "new-stack",
            "rllib_addpolicy_fix: this algorithm runs on RLlib's new (or "
            "hybrid) API stack; the shim leaves it as it is.",
        )
    return uses_old_stack
