"""Everything that knows how RLlib's legacy-stack API differs between Ray releases.

The rest of the package asks this package (``_compat.<name>``) and never names a Ray version, a
renamed attribute or a renamed keyword itself; each name here says at which release it changed.
Where each wrapped attribute lives, per release, is the patch table's (``patching/table.py``).
The releases the fix supports and CI tests are data in ``releases.py``. Version gates are
``packaging`` specifiers; where a rename is visible on the object, feature detection decides and
the specifier only documents the boundary.
"""

from __future__ import annotations

from .calls import (
    bind,
    called_function,
    rebind,
    remote_add_kwargs,
    signature,
    sync_weights_source,
)
from .config import configure_old_stack, without_worker_restarts
from .groups import (
    evaluation_group,
    group_uses_old_stack,
    groups,
    groups_receiving_add,
    is_policy_to_train,
    local_worker,
    num_remote_workers,
    restore_workers,
    trained_in_background,
    training_group,
    trial_runs_old_stack_algorithm,
    uses_old_stack,
)
from .jobs import PY_MODULES_FIELD, SETUP_HOOK_FIELD, is_driver, runs_setup_hooks
from .policies import (
    loaded_policy,
    loaded_policy_in_map,
    policy_ids,
    policy_to_stash,
    stashed_state_ref,
    weights_read_from_torch_model,
)
from .versions import SUPPORTED_RAY, installed_ray_version, new_stack_is_default, ray_supported
from .workers import (
    PROBE_TIMEOUT_SETTINGS,
    group_role,
    probe_timeout_s,
    restart_counts,
    samples_travel_as_refs,
    take_audits,
    take_out_of_service,
    tolerates_worker_failures,
    unhealthy_worker_ids,
    worker_manager,
)

__all__ = [
    "PROBE_TIMEOUT_SETTINGS",
    "PY_MODULES_FIELD",
    "SETUP_HOOK_FIELD",
    "SUPPORTED_RAY",
    "bind",
    "called_function",
    "configure_old_stack",
    "evaluation_group",
    "group_role",
    "group_uses_old_stack",
    "groups",
    "groups_receiving_add",
    "installed_ray_version",
    "is_driver",
    "is_policy_to_train",
    "loaded_policy",
    "loaded_policy_in_map",
    "local_worker",
    "new_stack_is_default",
    "num_remote_workers",
    "policy_ids",
    "policy_to_stash",
    "probe_timeout_s",
    "ray_supported",
    "rebind",
    "remote_add_kwargs",
    "restart_counts",
    "restore_workers",
    "runs_setup_hooks",
    "signature",
    "samples_travel_as_refs",
    "stashed_state_ref",
    "take_audits",
    "sync_weights_source",
    "take_out_of_service",
    "tolerates_worker_failures",
    "trained_in_background",
    "training_group",
    "trial_runs_old_stack_algorithm",
    "unhealthy_worker_ids",
    "uses_old_stack",
    "weights_read_from_torch_model",
    "without_worker_restarts",
    "worker_manager",
]
