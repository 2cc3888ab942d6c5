"""What the calling thread is in the middle of: the shim's own work, a training iteration, or a
call RLlib makes to a set's remote workers (:func:`using`, for the point-of-use check).

Thread-local flags that the same callers read before the shim reaches a set's workers.

*Busy* (:func:`quiet`, :func:`busy_here`): the worker set's remote calls push pending weights
first (``patching/worker_set.py``), except while this thread is busy: the shim's own remote
calls (a broadcast, ``verify()``, an undo), RLlib's own weight syncs and adds, and RLlib
building or restoring its workers.

*In a training iteration* (:func:`training_iteration`): a worker set found current is not
checked again. RLlib reaches a set's remote workers about ten times per iteration (PPO on Ray
2.60: sampling, metrics, global vars, its own weight sync), and before each the shim would
compare the stamps of every driver policy with what the set was last sent: O(N) each time,
about 1 % of ``train()`` per 100 snapshots for the ten. Inside ``Algorithm.step`` RLlib's own
code changes no weights but those of the policies it trains, which it keeps current itself, so
one check per set per iteration is enough. Anything the shim sees changing the driver's
policies meanwhile (:func:`driver_changed`: an add, a removal, the policy cache evicting one)
and every call outside an iteration (a script's own ``foreach_worker``, ``evaluate()``,
``verify``) checks in full.
"""

from __future__ import annotations

import contextlib
import threading
from collections.abc import Iterator
from typing import Any

_this_thread = threading.local()
#: Bumped whenever the shim sees the driver's policies change, from any thread.
_driver_changes = 0


@contextlib.contextmanager
def quiet() -> Iterator[None]:
    """Mark this thread busy: remote calls it makes meanwhile push nothing first."""
    _this_thread.depth = getattr(_this_thread, "depth", 0) + 1
    try:
        yield
    finally:
        _this_thread.depth -= 1


def busy_here() -> bool:
    return getattr(_this_thread, "depth", 0) > 0


@contextlib.contextmanager
def training_iteration() -> Iterator[None]:
    previous = getattr(_this_thread, "current", None)
    _this_thread.current = {}  # id(record) -> _driver_changes when it was found current
    try:
        yield
    finally:
        _this_thread.current = previous


def found_current(record: Any) -> bool:
    """Whether ``record``'s set was found current in this iteration, with no change since."""
    current = getattr(_this_thread, "current", None)
    return current is not None and current.get(id(record)) == _driver_changes


def mark_current(record: Any) -> None:
    current = getattr(_this_thread, "current", None)
    if current is not None:
        current[id(record)] = _driver_changes


def driver_changed() -> None:
    global _driver_changes
    _driver_changes += 1


def driver_changes() -> int:
    """How often the shim has seen the driver's policies change, from any thread."""
    return _driver_changes


@contextlib.contextmanager
def using(record: Any, check: dict[str, Any] | None) -> Iterator[None]:
    """RLlib reaches ``record``'s remote workers from this thread: its calls through the set's
    actor manager carry ``check`` (the point-of-use check, ``versions.check_for``)."""
    previous = getattr(_this_thread, "use", None)
    _this_thread.use = (record, check)
    try:
        yield
    finally:
        _this_thread.use = previous


def use_in_progress() -> tuple[Any, dict[str, Any] | None] | None:
    """``(record, check)`` of the call RLlib is making to a set's workers from this thread."""
    use: tuple[Any, dict[str, Any] | None] | None = getattr(_this_thread, "use", None)
    return use
