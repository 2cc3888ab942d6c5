"""Installing and removing the patch table's wrappers, all or nothing.

``install()`` registers a wrapt post-import hook per module of the table, so RLlib is patched
whether it is imported before or after this package. Each hook wraps what its module defines.
If a *required* attribute is missing (a Ray release that moved it), the shim undoes every
patch, logs one warning naming what is missing, and reports it through ``is_installed()`` and
``doctor``: it never runs half-installed.
"""

from __future__ import annotations

import functools
import sys
from collections.abc import Callable
from typing import Any

import wrapt

from .. import _compat, _settings
from .._guard import logger, warn_once
from ..activation import job_env
from ..syncing import remote, remote_check, remote_state, stamps, tracking
from .table import Patch, Wrapper, patches_for

_active = False
#: The modules whose functions run on remote workers, pickled by value.
_RUN_ON_WORKERS = (remote, remote_state, remote_check)
#: patch name -> (owner class or module, attribute, wrapt handle or, for by-reference wrappers, the
#: original function), for uninstall and doctor.
_wrapped: dict[str, tuple[Any, str, Any]] = {}
_hooked_modules: set[str] = set()
#: Required attributes this Ray lacks (the shim then patches nothing).
_missing: list[str] = []


def install() -> bool:
    """Wrap RLlib now, or as soon as its modules are imported. True when the fix is active."""
    global _active
    if _settings.disabled_by_environment():
        warn_once(
            "env",
            "rllib_addpolicy_fix: disabled by %s=%s; RLlib is left as it is.",
            _settings.ENV_VAR,
            _settings.switch(),
        )
        return False
    version = _compat.installed_ray_version()
    if not _compat.ray_supported(version):
        warn_once(
            "version",
            "rllib_addpolicy_fix: Ray %s is outside the supported range %s; "
            "RLlib is left as it is.",
            version,
            _compat.SUPPORTED_RAY,
        )
        return False
    with tracking.held():
        if _active:
            return True
        _active = True
        _missing.clear()
        assert version is not None
        for module_name in sorted({patch.module for patch in patches_for(version)}):
            if module_name in _hooked_modules:
                if module_name in sys.modules:
                    _on_import(sys.modules[module_name])
            else:
                _hooked_modules.add(module_name)
                wrapt.register_post_import_hook(_on_import, module_name)
    return _active


def uninstall() -> None:
    """Restore every wrapped attribute to the original object (identity preserved)."""
    global _active
    with tracking.held():
        _active = False
        for owner, attribute, handle in _wrapped.values():
            if isinstance(handle, wrapt.FunctionWrapper):
                wrapt.unwrap_object(owner, attribute, handle, missing_ok=True)
            elif getattr(vars(owner).get(attribute), "__wrapped__", None) is handle:
                setattr(owner, attribute, handle)  # a by-reference wrapper: the original back
        _wrapped.clear()
        stamps.stop_watching_torch()
        cloudpickle = sys.modules.get("ray.cloudpickle")
        for by_value in _RUN_ON_WORKERS:
            if cloudpickle is not None and by_value.__name__ in _pickled_by_value(cloudpickle):
                cloudpickle.unregister_pickle_by_value(by_value)


def is_installed() -> bool:
    return _active


def wrapped_targets() -> list[str]:
    """Names of the attributes wrapped right now."""
    return sorted(_wrapped)


def missing_targets() -> list[str]:
    """Required attributes this Ray's RLlib lacks; non-empty means the fix is not in effect."""
    return list(_missing)


def _pickled_by_value(cloudpickle: Any) -> set[str]:
    registry = getattr(cloudpickle, "cloudpickle", cloudpickle)
    return set(getattr(registry, "_PICKLE_BY_VALUE_MODULES", ()))


def _on_import(module: Any) -> None:
    """Post-import hook: wrap what this module defines, or undo everything if a required
    attribute is missing. Never breaks the host import."""
    try:
        with tracking.held():
            version = _compat.installed_ray_version()
            if not _active or version is None:
                return
            import ray.cloudpickle

            for by_value in _RUN_ON_WORKERS:
                if by_value.__name__ not in _pickled_by_value(ray.cloudpickle):
                    # Remote nodes need no copy of this package: what runs there travels by
                    # value.
                    ray.cloudpickle.register_pickle_by_value(by_value)
            here = [patch for patch in patches_for(version) if patch.module == module.__name__]
            missing = [
                patch.name
                for patch in here
                if patch.required_in(version) and not patch.defined_in(module)
            ]
            if missing:
                _give_up(missing, version)
                return
            for patch in here:
                if patch.defined_in(module):
                    _wrap(module, patch)
            if module.__name__ == "ray":
                job_env.warn_if_too_late()
    except Exception:  # noqa: BLE001 - a failed patch must leave RLlib importable and unpatched
        logger.exception("rllib_addpolicy_fix: could not patch %s", module.__name__)


def _give_up(missing: list[str], version: Any) -> None:
    uninstall()
    _missing.extend(missing)
    warn_once(
        "missing",
        "rllib_addpolicy_fix: this RLlib (Ray %s) lacks %s, which the fix "
        "needs; it patches nothing, so RLlib runs exactly as without it. Please report "
        "this Ray release.",
        version,
        ", ".join(missing),
    )


def _wrap(module: Any, patch: Patch) -> None:
    if patch.name in _wrapped:
        return
    owner = patch.holder(module)
    if patch.by_reference:
        original = vars(owner)[patch.attribute]
        setattr(owner, patch.attribute, _by_reference(original, patch.wrapper))
        _wrapped[patch.name] = (owner, patch.attribute, original)
    else:
        handle = wrapt.wrap_function_wrapper(owner, patch.attribute, patch.wrapper)
        _wrapped[patch.name] = (owner, patch.attribute, handle)


def _by_reference(original: Callable[..., Any], wrapper: Wrapper) -> Callable[..., Any]:
    """``wrapper`` around the method ``original`` as a plain function with the original's
    module and qualified name.

    Why not wrapt here: Ray copies every method of a class it turns into an actor (each Tune
    trial of an Algorithm, ``ray.remote(PPO)``) into the actor subclass, and ships that class
    with cloudpickle, which pickles a wrapt ``FunctionWrapper`` as the bare function it wraps:
    the trial would run RLlib's original. A plain function whose ``__module__`` and
    ``__qualname__`` name the place it is installed (``Algorithm.step``) is pickled by
    reference instead, so the trial looks ``Algorithm.step`` up by name in its own process and
    runs this wrapper wherever the shim is active there, RLlib's original where it is not.
    """

    @functools.wraps(original)
    def method(self: Any, *args: Any, **kwargs: Any) -> Any:
        if not _active:  # uninstalled, but still referenced by an actor class built before
            return original(self, *args, **kwargs)
        return wrapper(original.__get__(self, type(self)), self, args, kwargs)

    return method
