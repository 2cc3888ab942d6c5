"""A policy state that reaches remote workers through the remote ``add_policy`` call itself.

The worker set's ``add_policy`` pickles its keyword arguments (``policy_state`` included) into the
closure it runs on every remote worker. Passing a :class:`SharedPolicyState` there means:

* locally (driver) it is an ordinary dict, so RLlib applies it as any state;
* when pickled it becomes "``ray.get(<ref>)`` on unpickling", so each remote worker receives the
  state itself, put into the object store once instead of pickled once per worker.

A *deferred* one is empty until the driver's own ``RolloutWorker.add_policy`` has built the new
policy; the shim then fills it with that policy's state before the remote calls are pickled, so
remote copies start from the driver's initial weights instead of their own random init.
"""

from __future__ import annotations

from typing import Any

from . import _remote
from ._remote import leaves


class SharedPolicyState(dict):  # type: ignore[type-arg]
    """A policy state dict that pickles as an object-store reference."""

    __slots__ = ("ref", "deferred")

    def __init__(self, state: dict[str, Any] | None = None, *, deferred: bool = False) -> None:
        super().__init__(state or {})
        self.ref: Any = None
        self.deferred = deferred
        if state is not None:
            self.put(state)

    def put(self, state: dict[str, Any]) -> None:
        """Store ``state`` now: a copy, so later training cannot change what workers receive
        (torch policies return numpy views of live tensors)."""
        import ray

        self.ref = ray.put(dict(state))
        self.deferred = False

    @property
    def pending(self) -> bool:
        """True while deferred and not filled: nothing to send yet."""
        return self.ref is None

    def __reduce__(self) -> tuple[Any, ...]:
        if self.ref is None:
            return (type(None), ())  # RLlib's default: the remote builds its own init
        return (_remote.resolve_state, (self.ref,))


def state_nbytes(tree: Any) -> int:
    """Bytes of the arrays in a (nested) weights or state structure."""
    return sum(int(getattr(leaf, "nbytes", 0) or 0) for _, leaf in leaves(tree))


#: Parts of a just-built policy's state that its remote copies, built from the same class, spaces
#: and config, already have. Leaving them out spares every worker deserialising the driver's
#: config and connectors, and keeps each worker set's own config (the evaluation workers').
REBUILT_BY_EVERY_WORKER = ("policy_spec", "connector_configs")


def fresh_policy_state(policy: Any) -> dict[str, Any]:
    """The state of a policy the driver has just built, as its remote copies need it."""
    return {
        key: value
        for key, value in policy.get_state().items()
        if key not in REBUILT_BY_EVERY_WORKER
    }
