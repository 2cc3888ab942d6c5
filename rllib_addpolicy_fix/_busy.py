"""Which threads are inside the shim's own work, or inside an RLlib call the shim wraps.

The worker set's remote calls push pending weights first (``_wrappers.group_remote_call``),
except while this thread is busy: the shim's own remote calls (a broadcast, ``verify()``, a
rollback), RLlib's own weight syncs and adds, and RLlib building or restoring its workers.
"""

from __future__ import annotations

import contextlib
import threading
from collections.abc import Iterator

_this_thread = threading.local()


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
