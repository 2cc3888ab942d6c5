"""Interpreter-start hook of rllib-addpolicy-fix.

The wheel's ``rllib_addpolicy_fix.pth`` runs this source inline (``make_pth.py`` builds that
line), so it runs in every Python process of the environment and must cost next to nothing:
standard library only, nothing imported, no module looked up. It arms a finder that finds
nothing; on the first ``import ray.rllib`` the finder removes itself and imports
``rllib_addpolicy_fix``, whose wrapt post-import hooks then wrap RLlib's modules as they load.
Failures are swallowed (logged at debug level): this must never break interpreter start or the
import of Ray. Idempotent: some interpreters process a venv's .pth files twice.
"""

import os
import sys


def _arm() -> None:
    # Same values as rllib_addpolicy_fix._install.OFF_VALUES (a test keeps them equal).
    if os.environ.get("RLLIB_ADDPOLICY_FIX", "").strip().lower() in (
        "0",
        "off",
        "false",
        "no",
        "disable",
        "disabled",
    ):
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
                    import rllib_addpolicy_fix  # noqa: F401 - importing activates the shim
                except Exception:  # noqa: BLE001
                    import logging

                    logging.getLogger("rllib_addpolicy_fix").debug(
                        "auto-activation failed", exc_info=True
                    )
            return None  # the real finders import ray.rllib as usual

    sys.meta_path.insert(0, ActivateOnRLlibImport)


try:
    _arm()
except Exception:  # noqa: BLE001
    pass
