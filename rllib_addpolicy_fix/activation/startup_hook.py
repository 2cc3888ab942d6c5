"""The start-up hook: arms the fix in a new process, from the wheel's ``.pth`` and from Ray's
worker setup hook.

Standard library only, and nothing imported or looked up until RLlib is: this runs at every
interpreter start of the environment (the ``.pth`` line executes this source inline, see
``bootstrap/make_pth.py``) and in every worker process of a Ray job the fix started (the setup
hook, pickled by value, so a node needs no copy of this package to run it). ``arm`` puts a
finder that finds nothing in front of the import system; on the first ``import ray.rllib`` it
removes itself and imports the package, whose wrapt post-import hooks then wrap RLlib's modules
as they load. It names the package as data (:data:`PACKAGE`) because it runs outside it: as the
``.pth`` line's source, or pickled into a worker that may have no copy of it installed.
Failures are swallowed (logged at debug level): this must never break interpreter start, the
import of Ray or a worker's start. Idempotent: some interpreters process a venv's .pth files
twice, and a worker may get both the ``.pth`` and the hook.

It keeps its own minimal read of the kill switch; ``_settings`` owns that variable and a test
keeps the two in step.
"""

import os
import sys

PACKAGE = "rllib_addpolicy_fix"
ENV_VAR = "RLLIB_ADDPOLICY_FIX"
#: Values of :data:`ENV_VAR` that turn the fix off (``_settings.OFF_VALUES``).
OFF_VALUES = ("0", "off", "false", "no", "disable", "disabled")


def disabled() -> bool:
    return os.environ.get(ENV_VAR, "").strip().lower() in OFF_VALUES


def _activate() -> None:
    import importlib
    import logging

    try:
        importlib.import_module(PACKAGE)  # importing activates the fix
    except ModuleNotFoundError as missing:
        needed = (missing.name or "").split(".")[0]
        if needed and needed != PACKAGE:  # shipped by Ray, but not its dependency
            logging.getLogger(PACKAGE).warning(
                "rllib_addpolicy_fix: not active in this process (pid %s), which cannot import "
                "%s: `pip install %s` here.",
                os.getpid(),
                missing.name,
                needed,
            )
        else:
            logging.getLogger(PACKAGE).debug("not importable", exc_info=True)
    except Exception:  # noqa: BLE001
        logging.getLogger(PACKAGE).debug("auto-activation failed", exc_info=True)


def arm() -> None:
    if disabled():
        return
    if "ray.rllib" in sys.modules:  # a setup hook that runs after RLlib was imported
        _activate()
        return
    if any(getattr(finder, "rllib_addpolicy_fix_hook", False) for finder in sys.meta_path):
        return

    class ActivateOnRLlibImport:
        rllib_addpolicy_fix_hook = True

        @classmethod
        def find_spec(cls, fullname, path=None, target=None):  # type: ignore[no-untyped-def]
            if fullname == "ray.rllib":
                try:
                    sys.meta_path.remove(cls)
                except ValueError:
                    pass
                _activate()
            return None  # the real finders import ray.rllib as usual

    sys.meta_path.insert(0, ActivateOnRLlibImport)


def worker_setup_hook(users_hook=None):  # type: ignore[no-untyped-def]
    """Ray's ``worker_process_setup_hook`` for a job: arm the shim, then run the user's own hook
    (a callable or a ``"module.function"`` name) exactly as Ray would have, errors included."""

    def setup_rllib_addpolicy_fix():  # type: ignore[no-untyped-def]
        try:
            arm()
        except Exception:  # noqa: BLE001 - a raise here would kill the worker
            pass
        if users_hook is None:
            return None
        if callable(users_hook):
            return users_hook()
        import importlib

        module_name, _, function_name = str(users_hook).rpartition(".")
        return getattr(importlib.import_module(module_name), function_name)()

    return setup_rllib_addpolicy_fix
