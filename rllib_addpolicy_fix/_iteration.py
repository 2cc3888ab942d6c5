"""Inside one training iteration, a worker set found current is not checked again.

RLlib reaches a set's remote workers about ten times per iteration (PPO on Ray 2.60: sampling,
metrics, global vars, its own weight sync), and before each the shim would compare the stamps
of every driver policy with what the set was last sent: O(N) each time, about 1 % of
``train()`` per 100 snapshots for the ten. Inside ``Algorithm.step`` RLlib's own code changes
no weights but those of the policies it trains, which it keeps current itself, so one check per
set per iteration is enough. Anything the shim sees changing the driver's policies meanwhile
(an add, a removal, the policy cache evicting one) and every call outside an iteration (a
script's own ``foreach_worker``, ``evaluate()``, ``verify``) checks in full.
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
