"""Whether a driver-side policy's weights changed, without reading them; and what they are now.

A *stamp* changes whenever ``policy.get_weights()`` would return different values: for torch
policies, the version counters of the model's tensors (no weight read); for anything else, a
content digest. A policy evicted from the driver's LRU cache is stamped by its stashed state.
"""

from __future__ import annotations

import itertools
import weakref
from collections.abc import Callable, Hashable
from typing import Any

from .. import _compat
from .remote import leaves, weights_digest

_serial_counter = itertools.count(1)
_policy_serials: weakref.WeakKeyDictionary[Any, int] = weakref.WeakKeyDictionary()


def _policy_serial(policy: Any) -> int:
    """A number unique to this policy object for the process's lifetime (``id()`` is reused)."""
    try:
        serial = _policy_serials.get(policy)
        if serial is None:
            serial = _policy_serials[policy] = next(_serial_counter)
        return serial
    except TypeError:  # not weak-referenceable: fall back to identity
        return id(policy)


def weights_stamp(policy: Any) -> Hashable:
    """Changes whenever ``policy.get_weights()`` would return different values."""
    if _compat.weights_read_from_torch_model(policy):
        return (_policy_serial(policy), tuple((id(t), t._version) for t in _model_tensors(policy)))
    return ("digest", weights_digest(policy.get_weights()))


class _TensorList:
    """A model's parameters and buffers, valid until a module of its tree changes structure."""

    __slots__ = ("_model", "tensors", "valid")

    def __init__(self, model: Any) -> None:
        # Weakly: these lists are the values of ``_lists_by_module``, keyed by the model's own
        # modules, and a strong reference would keep every model ever cached alive.
        self._model = weakref.ref(model)
        self.tensors = tuple(itertools.chain(model.parameters(), model.buffers()))
        self.valid = True

    def is_for(self, model: Any) -> bool:
        return self.valid and self._model() is model


_tensor_lists: weakref.WeakKeyDictionary[Any, _TensorList] = weakref.WeakKeyDictionary()
#: module -> the cached lists whose tree contains it (a submodule may be shared).
_lists_by_module: weakref.WeakKeyDictionary[Any, list[_TensorList]] = weakref.WeakKeyDictionary()
_torch_hook_handles: list[Any] = []


def _model_tensors(policy: Any) -> tuple[Any, ...]:
    """The model's parameters and buffers. Walking the module tree costs ~40 us per policy, so
    the per-iteration check of a 100-policy league would cost ~1 % of ``train()``. The list is
    cached per policy and dropped when the model object changes or torch reports a parameter,
    buffer or submodule (re)registered on a module of its tree."""
    model = policy.model
    cached = _tensor_lists.get(policy) if _watch_torch_structure() else None
    if cached is not None and cached.is_for(model):
        return cached.tensors
    if cached is not None:
        _invalidate(cached)
    fresh = _TensorList(model)
    try:
        _tensor_lists[policy] = fresh
        for module in model.modules():
            lists = _lists_by_module.setdefault(module, [])
            lists[:] = [entry for entry in lists if entry.valid] + [fresh]
    except TypeError:  # not weak-referenceable: no caching
        pass
    return fresh.tensors


def _invalidate(cached: _TensorList) -> None:
    cached.valid = False
    cached.tensors = ()  # do not keep replaced tensors alive


def _structure_changed(module: Any, *_: Any) -> None:
    """torch's registration hook: a module gained or replaced a parameter, buffer or child."""
    for cached in _lists_by_module.pop(module, ()):
        _invalidate(cached)


def _watch_torch_structure() -> bool:
    """Register the structure-change hooks once; False when this torch lacks them (then
    nothing is cached)."""
    if _torch_hook_handles:
        return True
    from torch.nn.modules import module

    registrations: list[Any] = []
    for kind in ("parameter", "buffer", "module"):
        register = getattr(module, f"register_module_{kind}_registration_hook", None)
        if register is None:
            return False
        registrations.append(register)
    _torch_hook_handles.extend(register(_structure_changed) for register in registrations)
    return True


def stop_watching_torch() -> None:
    """Remove the hooks (``uninstall()``) and every cached list with them."""
    while _torch_hook_handles:
        _torch_hook_handles.pop().remove()
    _tensor_lists.clear()
    _lists_by_module.clear()


def current_weights(truth: Any, policy_id: str) -> tuple[Hashable, Any]:
    """(stamp, weights) of the driver's policy now (see :func:`_read_now`)."""
    return _read_now(truth, policy_id, lambda policy: policy.get_weights(), "weights")


#: Parts of a driver-side policy's state that its remote copies, built from the same class,
#: spaces and config, already have. Leaving them out spares every worker deserialising the
#: driver's config and connectors, and keeps each worker set's own config (the evaluation
#: workers').
REBUILT_BY_EVERY_WORKER = ("policy_spec", "connector_configs")


def current_policy_state(source: Any, policy_id: str) -> tuple[Hashable, dict[str, Any]]:
    """(stamp, state) of the driver's policy now, as its remote copies need it (without
    :data:`REBUILT_BY_EVERY_WORKER`; see :func:`_read_now`)."""
    stamp, state = _read_now(source, policy_id, lambda policy: policy.get_state(), None)
    return stamp, {key: value for key, value in state.items() if key not in REBUILT_BY_EVERY_WORKER}


def _read_now(
    truth: Any, policy_id: str, read: Callable[[Any], Any], stashed_part: str | None
) -> tuple[Hashable, Any]:
    """(stamp, what ``read`` returns) of the driver's policy now: read through the policy map,
    never a held reference (the LRU map may have evicted it, or reused the object for another
    id), and from the stash when evicted (the stashed state, or its ``stashed_part``), without
    loading it (that would evict another policy)."""
    import ray

    policy = _compat.loaded_policy(truth, policy_id)
    if policy is not None:
        return weights_stamp(policy), read(policy)
    stash_ref = _compat.stashed_state_ref(truth, policy_id)
    stashed = ray.get(stash_ref)
    return stash_stamp(stash_ref), stashed if stashed_part is None else stashed[stashed_part]


def state_nbytes(tree: Any) -> int:
    """Bytes of the arrays in a (nested) weights or state structure."""
    return sum(int(getattr(leaf, "nbytes", 0) or 0) for _, leaf in leaves(tree))


def stash_stamp(state_ref: Any) -> Hashable:
    """Stamp of a policy evicted from the driver's LRU policy map: its stashed state's ref (a
    new ref for every eviction; the state holds the weights the policy had then)."""
    return ("stash", state_ref.hex())
