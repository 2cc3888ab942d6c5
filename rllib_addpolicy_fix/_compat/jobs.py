"""What a Ray job's runtime environment can carry, per release.

``worker_process_setup_hook`` (a function every worker process of the job runs at start) came
after Ray 2.5 (2.10 has it): feature-detected from ``RuntimeEnv.known_fields``. A job started with
``ray job submit`` gets its runtime environment from the driver's environment (read by
``_settings``), and ``ray.init`` merges its own into it, refusing a field both set (2.5.1 to
2.60.0 alike).
"""

from __future__ import annotations

SETUP_HOOK_FIELD = "worker_process_setup_hook"
PY_MODULES_FIELD = "py_modules"


def runs_setup_hooks() -> bool:
    """Whether this Ray runs a job's setup hook in each of its worker processes."""
    try:
        from ray.runtime_env import RuntimeEnv
    except ImportError:
        return False
    return SETUP_HOOK_FIELD in getattr(RuntimeEnv, "known_fields", ())


def is_driver() -> bool:
    """Whether this process is a Ray driver (a script), not a worker of some job."""
    import ray._private.worker as worker_module

    return bool(getattr(worker_module.global_worker, "mode", None) == worker_module.SCRIPT_MODE)
