"""The shim's own work never becomes the user's failure: it is guarded, and logged once.

Each wrapper does its own work inside :func:`own_work`. Should that work fail, the failure is
logged once and RLlib's call runs exactly as it would without the shim. Errors the shim raises
on purpose (a duplicate id, an unsendable ``policies_to_train``) are built inside and raised
outside the guard; a remote worker's failure passes through it unchanged (``_faults``).
"""

from __future__ import annotations

import contextlib
import logging
from collections.abc import Iterator
from typing import Any

from . import _compat, _faults

logger = logging.getLogger("rllib_addpolicy_fix")

#: Keys of the warnings already logged in this process.
warned: set[str] = set()


def warn_once(key: str, message: str, *args: Any) -> None:
    if key not in warned:
        warned.add(key)
        logger.warning(message, *args)


@contextlib.contextmanager
def own_work(what: str) -> Iterator[None]:
    """Swallow (and log once per ``what``) a failure of the shim's own work: it must never
    become the user's failure."""
    try:
        yield
    except _faults.WorkerFault as fault:  # a worker's failure, not the shim's: RLlib's way
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


def bind(wrapped: Any, args: tuple[Any, ...], kwargs: dict[str, Any]) -> dict[str, Any] | None:
    """The call's arguments by name, or None when they do not fit (RLlib raises its own
    error for that call, unchanged)."""
    try:
        return _compat.bind(wrapped, args, kwargs)
    except TypeError:
        return None
