"""Tune trials that run without the fix, said in the driver.

A Tune trial hosts its Algorithm in a process of its own. Where the fix is not in effect there
(shipping turned off, a node whose Python cannot import the package, a failed activation, the
fix switched off in that process), the trial's league plays stale snapshots, and the trial
itself cannot say so: nothing of the fix runs there. Its results can: every result of a
legacy-stack Algorithm the fix is in effect for carries the fix's figures
(``rllib_addpolicy_fix``). The driver, where the fix is in effect, reads each trial's first
result as Tune records it and warns once per trial that lacks them.
"""

from __future__ import annotations

from typing import Any

from .. import _compat
from .._compat import bind
from .._guard import logger, own_work
from ..syncing.tracking import RESULT_KEY

#: Trials already judged, by id: one warning per trial at most.
_judged: set[str] = set()


def trial_result(wrapped: Any, trial: Any, args: Any, kwargs: Any) -> Any:
    """``Trial.update_last_result`` in the driver: Tune records a trial's result."""
    outcome = wrapped(*args, **kwargs)
    with own_work("checking that a Tune trial runs with the fix"):
        arguments = bind(wrapped, args, kwargs)
        result = arguments.get("result") if arguments else None
        trial_id = str(getattr(trial, "trial_id", ""))
        if isinstance(result, dict) and trial_id and trial_id not in _judged:
            _judged.add(trial_id)
            if _lacks_the_fix(trial, result):
                _warn(trial)
    return outcome


def _lacks_the_fix(trial: Any, result: dict[str, Any]) -> bool:
    if RESULT_KEY in result or "training_iteration" not in result:
        return False
    return _compat.trial_runs_old_stack_algorithm(trial)


def _warn(trial: Any) -> None:
    logger.warning(
        "rllib_addpolicy_fix: Tune trial %s runs an RLlib Algorithm on the legacy API stack "
        "without the fix (its results carry no %r figures), so its remote workers may play "
        "policies added at run time with stale weights. The fix is in effect in this driver, "
        "not in the trial's process: install rllib-addpolicy-fix on every node "
        "(pip install rllib-addpolicy-fix), do not set RLLIB_ADDPOLICY_FIX_SHIP=never or "
        "RLLIB_ADDPOLICY_FIX=0 for the trials, or run `python -m rllib_addpolicy_fix doctor` on "
        "the trial's node to see why.",
        trial,
        RESULT_KEY,
    )
