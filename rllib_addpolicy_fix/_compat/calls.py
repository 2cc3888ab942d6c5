"""Arguments of the wrapped RLlib functions, by name, whatever the release's signature."""

from __future__ import annotations

import functools
import inspect
from collections.abc import Callable
from typing import Any


@functools.cache
def signature(func: Callable[..., Any]) -> inspect.Signature:
    return inspect.signature(func)


def _bound(
    func: Callable[..., Any], args: tuple[Any, ...], kwargs: dict[str, Any]
) -> tuple[inspect.BoundArguments, bool]:
    """The call bound to the underlying function's signature, and whether ``func`` was a bound
    method (its owner then fills the first parameter).

    The signature is cached per underlying function, never per bound method (that would keep
    every Algorithm alive).
    """
    owner = getattr(func, "__self__", None)
    parameters = signature(getattr(func, "__func__", func))
    if owner is None:
        return parameters.bind(*args, **kwargs), False
    return parameters.bind(owner, *args, **kwargs), True


def bind(
    func: Callable[..., Any], args: tuple[Any, ...], kwargs: dict[str, Any]
) -> dict[str, Any] | None:
    """Call arguments by name (defaults filled), whatever the release's signature; None when
    they do not fit it (RLlib then raises its own error for that call, unchanged)."""
    try:
        bound, method = _bound(func, args, kwargs)
    except TypeError:
        return None
    bound.apply_defaults()
    arguments = dict(bound.arguments)
    if method:
        arguments.pop(next(iter(bound.signature.parameters)))
    return arguments


def rebind(
    func: Callable[..., Any], args: tuple[Any, ...], kwargs: dict[str, Any], /, **changes: Any
) -> tuple[tuple[Any, ...], dict[str, Any]]:
    """``(args, kwargs)`` of the same call with the named arguments changed, wherever the
    release's signature has them (by position or keyword)."""
    bound, method = _bound(func, args, kwargs)
    bound.arguments.update(changes)
    call_args = bound.args[1:] if method else bound.args
    return tuple(call_args), dict(bound.kwargs)


#: Keyword that names the weight source of ``sync_weights`` (renamed in 2.7).
SYNC_SOURCE_KWARGS = ("from_worker_or_learner_group", "from_worker_or_trainer")


def sync_weights_source(arguments: dict[str, Any]) -> Any:
    for name in SYNC_SOURCE_KWARGS:
        if arguments.get(name) is not None:
            return arguments[name]
    return None


#: What RLlib's worker set ``add_policy`` runs on each remote worker (2.5 to 2.60 alike): a
#: closure over the keyword arguments of ``RolloutWorker.add_policy``.
REMOTE_ADD_FUNCTION = "_create_new_policy_fn"
REMOTE_ADD_KWARGS = "new_policy_instance_kwargs"


def remote_add_kwargs(func: Any) -> dict[str, Any] | None:
    """The ``RolloutWorker.add_policy`` keyword arguments of RLlib's remote half of a worker
    set's ``add_policy``, if ``func`` is that closure; else None."""
    code = getattr(func, "__code__", None)
    if code is None or code.co_name != REMOTE_ADD_FUNCTION:
        return None
    try:
        cell = func.__closure__[code.co_freevars.index(REMOTE_ADD_KWARGS)]
        kwargs = cell.cell_contents
    except (TypeError, ValueError, IndexError):
        return None
    return dict(kwargs) if isinstance(kwargs, dict) else None


def called_function(args: tuple[Any, ...], kwargs: dict[str, Any]) -> Any:
    """The function a worker set's ``foreach_*`` call runs (its first parameter, ``func``, in
    every release)."""
    return args[0] if args else kwargs.get("func")
