"""Which Ray is this, and does the shim support it (the range is in ``releases``)."""

from __future__ import annotations

import sys
from importlib import metadata

from packaging.specifiers import SpecifierSet
from packaging.version import InvalidVersion, Version

from . import releases

#: Ray releases the shim patches. Outside this range it patches nothing and says so once.
SUPPORTED_RAY = SpecifierSet(releases.SUPPORTED_RAY)


def installed_ray_version() -> Version | None:
    """The Ray version without importing Ray (``import ray`` costs seconds)."""
    module = sys.modules.get("ray")
    text = getattr(module, "__version__", None)
    if text is None:
        try:
            text = metadata.version("ray")
        except metadata.PackageNotFoundError:
            return None
    try:
        return Version(str(text))
    except InvalidVersion:
        return None


def ray_supported(version: Version | None = None) -> bool:
    version = version if version is not None else installed_ray_version()
    return version is not None and SUPPORTED_RAY.contains(version, prereleases=True)


#: RLlib's default config is the new API stack from this release on (the shim fixes the old).
NEW_STACK_DEFAULT_FROM = Version("2.40")


def new_stack_is_default(version: Version | None = None) -> bool:
    version = version if version is not None else installed_ray_version()
    return version is not None and version >= NEW_STACK_DEFAULT_FROM
