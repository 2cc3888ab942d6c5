"""Make policies added at run time reach every remote RLlib worker (legacy API stack).

``import rllib_addpolicy_fix`` is all a script needs: it wraps RLlib as soon as RLlib is
imported (before or after this import), without importing Ray itself. Set
``RLLIB_ADDPOLICY_FIX=0`` to turn it off.
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from typing import Any

from ._deferred import RemoteAddError
from ._faults import WorkerTimeoutError
from ._install import install, is_installed, uninstall
from ._verify import (
    ConsistencyReport,
    InconsistentWeightsError,
    PolicyCheck,
    assert_consistent,
    verify,
)
from ._wrappers import RESULT_KEY

__version__ = "0.1.0"

__all__ = [
    "RESULT_KEY",
    "ConsistencyReport",
    "InconsistentWeightsError",
    "PolicyCheck",
    "RemoteAddError",
    "SyncSummary",
    "WorkerTimeoutError",
    "__version__",
    "assert_consistent",
    "install",
    "is_installed",
    "sync",
    "uninstall",
    "verify",
]


@dataclass(frozen=True)
class SyncSummary:
    """What :func:`sync` sent: policy ids per worker set, and how long it took."""

    sent: dict[str, list[str]] = field(default_factory=dict)
    seconds: float = 0.0


def sync(algo: Any) -> SyncSummary:
    """Push every pending driver-side weight change to the remote workers of ``algo``'s training
    and evaluation sets now, blocking; what the shim otherwise does before the next sample.

    Bounded like every call of the shim: a worker that does not apply the weights in time is
    handed to RLlib's fault handling, and its error raised when the algorithm's config does not
    tolerate failed workers (:class:`WorkerTimeoutError` for one that did not answer)."""
    from . import _broadcast

    started = time.perf_counter()
    sent = _broadcast.push_everything(algo)
    return SyncSummary(sent, time.perf_counter() - started)


install()
