"""Where the wheel's start-up hook (``rllib_addpolicy_fix.pth``) is, and whether it runs here."""

from __future__ import annotations

import os
import site
import sys
from pathlib import Path

from . import _arm

PTH_NAME = "rllib_addpolicy_fix.pth"


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
    if _arm.disabled():
        return path, False, f"{_arm.ENV_VAR} turns it off"
    return path, True, "runs at interpreter start and arms on the first import of ray.rllib"
