"""Make policies added at run time reach every remote RLlib worker (legacy API stack).

``import rllib_addpolicy_fix`` is all a script needs: it wraps RLlib as soon as RLlib is
imported (before or after this import), without importing Ray itself. Set
``RLLIB_ADDPOLICY_FIX=0`` to turn it off. This module is the public API; how the folders
below divide the work is in ``docs/reading-the-code.md``.
"""

from __future__ import annotations

from .patching.install import install, is_installed, uninstall
from .syncing.broadcast import SyncSummary, sync
from .syncing.held_adds import RemoteAddError
from .syncing.tracking import RESULT_KEY
from .syncing.transport import WorkerTimeoutError
from .tools.verify import (
    ConsistencyReport,
    InconsistentWeightsError,
    PolicyCheck,
    assert_consistent,
    verify,
)

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


install()
