"""Arguments of the wrapped RLlib functions, by name, whatever the release's signature."""

from __future__ import annotations

import functools
import inspect
from collections.abc import Callable
from typing import Any


@functools.cache
def signature(func: Callable[..., Any]) -> inspect.Signature:
    return inspect.signature(func)


def bind(func: Callable[..., Any], args: tuple[Any, ...], kwargs: dict[str, Any]) -> dict[str, Any]:
    """Call arguments by name (defaults filled), whatever the release's signature.

    The signature is cached per underlying function, never per bound method (that would keep
    every Algorithm alive).
    """
    owner = getattr(func, "__self__", None)
    function = getattr(func, "__func__", func)
    parameters = signature(function)
    bound = (
        parameters.bind(owner, *args, **kwargs)
        if owner is not None
        else parameters.bind(*args, **kwargs)
    )
    bound.apply_defaults()
    arguments = dict(bound.arguments)
    if owner is not None:
        arguments.pop(next(iter(parameters.parameters)))
    return arguments


#: Keyword that names the weight source of ``sync_weights`` (renamed in 2.7).
SYNC_SOURCE_KWARGS = ("from_worker_or_learner_group", "from_worker_or_trainer")


def sync_weights_source(arguments: dict[str, Any]) -> Any:
    for name in SYNC_SOURCE_KWARGS:
        if arguments.get(name) is not None:
            return arguments[name]
    return None
