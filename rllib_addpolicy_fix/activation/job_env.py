"""The shim in every process of a Ray job its driver starts, with nothing installed elsewhere.

A Tune trial or a ``ray.remote(PPO)`` actor hosts its Algorithm in a worker process, possibly
on a node whose Python has no copy of this package and never reads its ``.pth``. Where the
wheel's start-up hook is not in effect in the driver (only ``import rllib_addpolicy_fix`` in the
script; see :func:`ships`), ``ray.init`` (wrapped where the shim is active) adds two things to
the job's runtime environment, which Ray ships to every node and applies to every worker
process of the job:

- this package as a ``py_modules`` entry, so each worker can import it;
- a ``worker_process_setup_hook`` that arms the shim at worker start (``startup_hook``: standard
  library only and pickled by value, so it costs a worker next to nothing and needs nothing
  installed), chained with the user's own hook, which still runs, last, exactly as before.

Whether the start-up hook runs in this process (:func:`find_pth`) decides it. Everything else
the user put in the runtime environment passes unchanged. Where this cannot be
done (a Ray without setup hooks; ``ray job submit`` already set either field; Ray Client;
``ray.init`` ran before the shim was imported), one warning says what to install instead.
"""

from __future__ import annotations

import logging
import os
import site
import sys
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any

from .. import _compat, _settings
from .._guard import own_work, warn_once
from . import startup_hook

#: The package's directory: what a job's ``py_modules`` ships.
PACKAGE_DIR = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
PTH_NAME = "rllib_addpolicy_fix.pth"
_INSTALL_EVERYWHERE = (
    "`pip install rllib-addpolicy-fix` into the Python environment of every node (check one "
    "with `python -m rllib_addpolicy_fix doctor`)"
)


def ray_init(
    wrapped: Callable[..., Any], instance: Any, args: tuple[Any, ...], kwargs: dict[str, Any]
) -> Any:
    """``ray.init``: the user's call, with the shim merged into the job's runtime environment."""
    import ray

    if ray.is_initialized() or kwargs.get("local_mode") or not ships():
        return wrapped(*args, **kwargs)
    address = args[0] if args else kwargs.get("address")
    if str(address or _settings.ray_address()).startswith("ray://"):
        warn_once(
            "job-env-client",
            "rllib_addpolicy_fix: with Ray Client (ray://) the fix is not added to the job's "
            "runtime environment; the Algorithm runs on the cluster: %s.",
            _INSTALL_EVERYWHERE,
        )
        return wrapped(*args, **kwargs)
    runtime_env = kwargs.get("runtime_env")
    merged = None
    with own_work("adding the shim to the job's runtime environment"):
        merged = with_the_shim(runtime_env)
    if merged is None:
        return wrapped(*args, **kwargs)
    quiet = _QuietUploadOfThisPackage()
    packaging_logger = logging.getLogger("ray._private.runtime_env.packaging")
    packaging_logger.addFilter(quiet)
    try:
        return wrapped(*args, **{**kwargs, "runtime_env": merged})
    finally:
        packaging_logger.removeFilter(quiet)


def ships() -> bool:
    """Whether ``ray.init`` adds the shim to the job's runtime environment.

    Any runtime environment makes Ray start each worker process of the job through its runtime
    environment machinery, which costs every worker start about 0.3 to 0.5 s on Ray 2.60 (the
    setup hook itself costs 0.1 ms). So by default (``auto``) the shim ships itself only where
    the wheel's start-up hook is not in effect in this process: with the wheel installed, the
    job's processes on this machine activate the fix by themselves. ``always`` is for a cluster
    whose other nodes lack the wheel; ``never`` leaves every runtime environment alone.
    """
    mode = _settings.ship_mode()
    if mode != "auto":
        return mode == "always"
    return not find_pth()[1]


def _site_dirs() -> list[str]:
    dirs = list(site.getsitepackages()) if hasattr(site, "getsitepackages") else []
    if site.ENABLE_USER_SITE and site.USER_SITE:
        dirs.append(site.USER_SITE)
    return dirs


def find_pth() -> tuple[str | None, bool, str]:
    """Where the start-up hook is, whether it runs at interpreter start here, and why (not)."""
    site_dirs = _site_dirs()
    for directory in site_dirs + [p for p in sys.path if p and p not in site_dirs]:
        candidate = Path(directory) / PTH_NAME
        if candidate.is_file():
            path = str(candidate)
            break
    else:
        return None, False, "not installed (install the wheel, or pip install -e .)"
    if sys.flags.no_site:
        return path, False, "site is disabled (python -S): use sitecustomize, see README"
    if os.path.dirname(path) not in site_dirs:
        return path, False, "not in a site directory, so Python does not read it"
    if startup_hook.disabled():
        return path, False, f"{_settings.ENV_VAR} turns it off"
    return path, True, "runs at interpreter start and arms on the first import of ray.rllib"


def with_the_shim(runtime_env: Mapping[str, Any] | None) -> dict[str, Any] | None:
    """``runtime_env`` plus this package and its setup hook; None where it must stay as is."""
    if not _compat.runs_setup_hooks():
        warn_once(
            "job-env",
            "rllib_addpolicy_fix: Ray %s cannot run setup code in a job's worker processes, "
            "so a Tune trial or Ray actor that hosts an Algorithm gets the fix only where "
            "the package activates by itself: %s.",
            _compat.installed_ray_version(),
            _INSTALL_EVERYWHERE,
        )
        return None
    submitted = _settings.submitted_job_runtime_env()
    taken = [f for f in (_compat.PY_MODULES_FIELD, _compat.SETUP_HOOK_FIELD) if f in submitted]
    if taken:
        warn_once(
            "job-env",
            "rllib_addpolicy_fix: this job was submitted with its own %s, which Ray does not "
            "let ray.init extend; trials and actors on nodes without the package run without "
            "the fix. To cover them: %s.",
            " and ".join(taken),
            _INSTALL_EVERYWHERE,
        )
        return None
    import ray.cloudpickle

    ray.cloudpickle.register_pickle_by_value(startup_hook)  # workers need no copy to run it
    merged = dict(runtime_env or {})
    py_modules = list(merged.get(_compat.PY_MODULES_FIELD) or [])
    if PACKAGE_DIR not in py_modules:
        py_modules.append(PACKAGE_DIR)
    merged[_compat.PY_MODULES_FIELD] = py_modules
    users_hook = merged.get(_compat.SETUP_HOOK_FIELD)
    # startup_hook is untyped on purpose: the .pth runs its source, where importing typing costs.
    hook = startup_hook.worker_setup_hook(users_hook)  # type: ignore[no-untyped-call]
    merged[_compat.SETUP_HOOK_FIELD] = hook
    return merged


def warn_if_too_late() -> None:
    """Called when the shim is installed in a process where Ray is already initialized: if this
    process is a driver, its job's other processes get the fix only where it is installed."""
    import ray

    if ray.is_initialized() and _compat.is_driver() and ships():
        warn_once(
            "job-env-late",
            "rllib_addpolicy_fix: ray.init ran before `import rllib_addpolicy_fix`, so Tune "
            "trials and Ray actors of this job get the fix only where the package activates by "
            "itself. Import it at the top of the script, or %s.",
            _INSTALL_EVERYWHERE,
        )


class _QuietUploadOfThisPackage(logging.Filter):
    """Drops Ray's three INFO lines about packaging and uploading this package's directory (the
    user did not ask for it); Ray's lines about the user's own ``py_modules`` pass."""

    def __init__(self) -> None:
        super().__init__()
        self._ours = False

    def filter(self, record: logging.LogRecord) -> bool:
        message = record.getMessage()
        if PACKAGE_DIR in message:
            self._ours = True
            return False
        if self._ours and record.levelno <= logging.INFO and "package" in message:
            if message.startswith("Successfully pushed"):
                self._ours = False
            return False
        return True
