"""The wrappers on RLlib's actor manager (``FaultTolerantActorManager``): the point-of-use check
rides along with every call RLlib makes to a worker set's remote workers.

``<worker set>.foreach_*`` (``worker_set.group_remote_call``) marks the thread as using that
set and hands over what the check needs (``syncing/versions``). The manager is where RLlib
turns that into one remote call per worker, remote workers only, so it is here that RLlib's
function is wrapped in ``syncing/remote_check.checked_call``: the worker checks, inside the
same call and before RLlib's function samples, that it holds what the driver last delivered.

* ``foreach_actor`` (synchronous: PPO's and the evaluation's sampling, metrics, ...): the
  results come back here, so the workers' audit figures ride back on them and are taken off
  before RLlib sees a result.
* ``foreach_actor_async`` (APPO/IMPALA's sampling, 2.60's evaluation): the results come back
  through ``fetch_ready_async_reqs``, where the figures are taken off the same way. Where RLlib
  fetches sample results as object refs and hands them on unread (IMPALA's aggregation
  workers), nothing rides back: each worker keeps its figures until a synchronous call takes
  them.
"""

from __future__ import annotations

import functools
from typing import Any

from .. import _compat
from .._compat import bind
from .._guard import own_work
from ..syncing import remote_check, this_thread, tracking, versions

#: What the shim does to RLlib's calls to the remote workers.
CHECK_AT_USE = "the check at the point of use"


def manager_foreach_actor(wrapped: Any, manager: Any, args: Any, kwargs: Any) -> Any:
    """Synchronous: the figures come back on this call's own results."""
    return _checked(wrapped, manager, args, kwargs, results_here=True)


def manager_foreach_actor_async(wrapped: Any, manager: Any, args: Any, kwargs: Any) -> Any:
    """Asynchronous: the figures come back through :func:`manager_fetch_ready_async_reqs`."""
    return _checked(wrapped, manager, args, kwargs, results_here=False)


def _checked(wrapped: Any, manager: Any, args: Any, kwargs: Any, *, results_here: bool) -> Any:
    call = None
    with own_work(CHECK_AT_USE):
        call = _with_check(wrapped, manager, args, kwargs)
    if call is None:
        return wrapped(*args, **kwargs)
    call_args, call_kwargs, record, harvest = call
    results = wrapped(*call_args, **call_kwargs)
    if results_here and harvest:
        _compat.take_audits(results, remote_check.AUDITED, functools.partial(_add_figures, record))
    return results


def manager_fetch_ready_async_reqs(wrapped: Any, manager: Any, args: Any, kwargs: Any) -> Any:
    """Results of asynchronous calls: the figures they carry are taken off (whatever thread
    fetches them)."""
    results = wrapped(*args, **kwargs)
    if not kwargs.get("return_obj_refs"):  # keyword-only in every release
        _compat.take_audits(
            results, remote_check.AUDITED, functools.partial(_add_figures_of, manager)
        )
    return results


def _add_figures(record: tracking.GroupRecord, figures: dict[str, Any]) -> None:
    with tracking.LOCK:
        record.ledger.add_figures(figures)


def _add_figures_of(manager: Any, figures: dict[str, Any]) -> None:
    for record in tracking.all_records():
        if record.group is not None and _compat.worker_manager(record.group) is manager:
            _add_figures(record, figures)
            return


def _with_check(
    wrapped: Any, manager: Any, args: Any, kwargs: Any
) -> tuple[tuple[Any, ...], dict[str, Any], tracking.GroupRecord, bool] | None:
    """The call with RLlib's function(s) wrapped in the point-of-use check, when the thread is
    using the set this manager serves (else None: the call goes ahead unchanged)."""
    use = this_thread.use_in_progress()
    if use is None or this_thread.busy_here():
        return None
    record, check = use
    if check is None or record.group is None or _compat.worker_manager(record.group) is not manager:
        return None
    arguments = bind(wrapped, args, kwargs)
    if arguments is None:
        return None
    # Results fetched as object refs go on unread (to aggregation actors), and those of a
    # fire-and-forget call (``timeout_seconds=0``) are dropped: nothing rides back on them, the
    # worker keeps its figures for the next call that brings them.
    harvest = (
        not arguments.get("return_obj_refs")
        and arguments.get("timeout_seconds") != 0
        and not _compat.samples_travel_as_refs(record.group)
    )
    carried = {"ref": check["ref"], "catch_up": check["catch_up"], "harvest": harvest}

    code = versions.code_ref()

    def checked(func: Any) -> Any:
        return functools.partial(
            remote_check.from_the_object_store,
            _rllib_addpolicy_fix_code=code,
            _rllib_addpolicy_fix_inner=func,
            _rllib_addpolicy_fix_check=carried,
        )

    func = arguments.get("func")
    per_call = arguments.get("kwargs")
    if isinstance(func, str) and isinstance(per_call, list):
        func = [func] * len(per_call)  # RLlib pairs per-call kwargs with a list of functions
    funcs = [checked(f) for f in func] if isinstance(func, list) else checked(func)
    call_args, call_kwargs = _compat.rebind(wrapped, args, kwargs, func=funcs)
    return call_args, call_kwargs, record, harvest
