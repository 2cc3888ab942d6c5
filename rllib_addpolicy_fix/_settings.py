"""Every environment variable the fix reads: names, accepted values, parsing, and one warning
per value it does not accept.

The fix's own variables:

* :data:`ENV_VAR` (``RLLIB_ADDPOLICY_FIX``): the kill switch. One of :data:`OFF_VALUES` turns
  the fix off in that process; anything else leaves it on (an unknown value says so once). The
  wheel's start-up hook (``activation/startup_hook.py``) keeps its own minimal read of it: it
  runs as standard-library source at interpreter start, before this package can be imported.
* :data:`SHIP_ENV_VAR` (``RLLIB_ADDPOLICY_FIX_SHIP``): whether ``ray.init`` adds the fix to the
  job's runtime environment (``auto``, ``always``, ``never``; ``activation/job_env.py``).
* :data:`TIMEOUT_ENV_VAR` (``RLLIB_ADDPOLICY_FIX_TIMEOUT_S``): how long the shim waits for a
  remote worker, overriding RLlib's health-probe timeout (``syncing/transport.py``).

Ray's own variables it reads: ``RAY_ADDRESS`` (Ray Client or not) and the runtime environment
``ray job submit`` gave the driver.
"""

from __future__ import annotations

import json
import os
from typing import Any, Literal

from ._guard import warn_once

ENV_VAR = "RLLIB_ADDPOLICY_FIX"
#: Values of :data:`ENV_VAR` that turn the fix off (the start-up hook checks the same ones).
OFF_VALUES = frozenset({"0", "off", "false", "no", "disable", "disabled"})
ON_VALUES = frozenset({"", "1", "on", "true", "yes", "enable", "enabled"})

SHIP_ENV_VAR = "RLLIB_ADDPOLICY_FIX_SHIP"
_SHIP_ALWAYS = frozenset({"always", "1", "on", "true", "yes"})
_SHIP_NEVER = frozenset({"never", "0", "off", "false", "no"})

#: Overrides the timeout of every remote call the shim makes (seconds, > 0).
TIMEOUT_ENV_VAR = "RLLIB_ADDPOLICY_FIX_TIMEOUT_S"

_RAY_ADDRESS_VAR = "RAY_ADDRESS"
#: Where a driver started by ``ray job submit`` finds its job's config (2.5.1 to 2.60.0 alike).
_SUBMITTED_JOB_CONFIG_VAR = "RAY_JOB_CONFIG_JSON_ENV_VAR"


def switch() -> str | None:
    """:data:`ENV_VAR` as set, or None."""
    return os.environ.get(ENV_VAR)


def disabled_by_environment() -> bool:
    value = (switch() or "").strip().lower()
    if value not in OFF_VALUES | ON_VALUES:
        warn_once(
            "env-value",
            "rllib_addpolicy_fix: %s=%r is not a known value; the fix stays "
            "on. Use one of %s to turn it off (or %s for on).",
            ENV_VAR,
            switch(),
            sorted(OFF_VALUES),
            sorted(ON_VALUES - {""}),
        )
    return value in OFF_VALUES


def ship_mode() -> Literal["auto", "always", "never"]:
    raw = os.environ.get(SHIP_ENV_VAR, "auto")
    value = raw.strip().lower()
    if value in _SHIP_ALWAYS:
        return "always"
    if value in _SHIP_NEVER:
        return "never"
    if value not in ("", "auto"):
        warn_once(
            "ship-value",
            "rllib_addpolicy_fix: %s=%r is not one of auto, always, never; using auto.",
            SHIP_ENV_VAR,
            raw,
        )
    return "auto"


def timeout_override_s() -> float | None:
    """:data:`TIMEOUT_ENV_VAR` in seconds, or None when unset or not a number > 0 (said once
    per value: this runs before every remote call)."""
    override = os.environ.get(TIMEOUT_ENV_VAR, "").strip()
    if not override:
        return None
    try:
        value = float(override)
        if value > 0:
            return value
    except ValueError:
        pass
    warn_once(
        f"timeout-value:{override}",
        "rllib_addpolicy_fix: ignoring %s=%r (not a number of seconds > 0)",
        TIMEOUT_ENV_VAR,
        override,
    )
    return None


def ray_address() -> str:
    return os.environ.get(_RAY_ADDRESS_VAR, "")


def submitted_job_runtime_env() -> dict[str, Any]:
    """The runtime environment ``ray job submit`` gave this driver (empty when not submitted)."""
    raw = os.environ.get(_SUBMITTED_JOB_CONFIG_VAR)
    if not raw:
        return {}
    try:
        runtime_env = json.loads(raw).get("runtime_env") or {}
    except (ValueError, AttributeError):
        return {}
    return dict(runtime_env) if isinstance(runtime_env, dict) else {}
