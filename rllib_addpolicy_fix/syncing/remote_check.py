"""The point-of-use check: runs on a remote worker inside the very call RLlib makes it sample by.

A check made on the driver before a call can be broken before the worker acts on it: Ray
restarts a worker the moment it dies, and a call sent after that reaches a new process built
from the config alone. So every call by which RLlib reaches a set's remote workers carries what
the driver last delivered of each policy the fix keeps in sync (``{policy_id: (version,
digest)}``) and one object-store reference to how to catch up; :func:`checked_call` compares,
on the worker, before RLlib's own function runs, catches up what differs, stamps the versions
the call starts with, and counts what was sampled with which (the audit, in each result).

Each worker keeps, per policy, the version it holds, that version's digest and a cheap stamp of
the policy's tensors (torch's per-tensor change counters, which every in-place write moves,
``set_weights`` included): while the stamp is unchanged the copy is the version's, with no
weight read. Only a changed stamp costs a digest, and only a digest that differs costs a catch
up (one fetch of what the worker lacks).

Pickled by value like ``remote`` (standard library, ``ray`` and numpy only; nothing else of the
package). Nothing here raises out of the fix's own work: a worker must never die of it. RLlib's
own function runs exactly as without the fix and its errors reach RLlib unchanged.
"""

from __future__ import annotations

import logging
from typing import Any

from .remote import only_new_policy_callbacks, read_weights, set_policy_weights, weights_digest
from .remote_state import held, stamp

logger = logging.getLogger("rllib_addpolicy_fix.remote")

#: The attribute of a sample batch that carries the worker's audit figures back to the driver:
#: an attribute, not a column, so nothing reaches the learner, and where no driver-side wrapper
#: takes it off (results handed on as object refs, an uninstall while requests are in flight)
#: it is an unused attribute, not a changed result.
AUDITED = "_rllib_addpolicy_fix_audit"
#: The ``RolloutWorker`` attribute of the audit figures not yet sent to the driver (a new
#: process starts without them, and without versions: ``remote_state``).
FIGURES = "_rllib_addpolicy_fix_figures"
#: The ``RolloutWorker`` attribute of the last check fetched: (its ref's hex, its content).
CHECK = "_rllib_addpolicy_fix_check"
#: The counters of the audit (``max_version_lag`` is a maximum, the rest are sums).
FIGURE_NAMES = (
    "sampled_batches",
    "sampled_env_steps",
    "stale_batches",
    "stale_env_steps",
    "caught_up",
    "max_version_lag",
)


def from_the_object_store(
    worker: Any, *args: Any, _rllib_addpolicy_fix_code: Any, **kwargs: Any
) -> Any:
    """What each call carries instead of this module: :func:`checked_call` is put into the
    object store once per driver process (``versions.code_ref``) and fetched once per worker
    process, so a call carries this stub (it references nothing else of the module, so nothing
    else is pickled with it), not the module's code. Should the fetch fail, RLlib's function
    runs unchecked rather than the worker dying."""
    code = _rllib_addpolicy_fix_code
    checked = None
    try:
        cache = vars(worker).setdefault("_rllib_addpolicy_fix_code", {})
        checked = cache.get(code.hex())
        if checked is None:
            import ray

            checked = cache[code.hex()] = ray.get(code)
    except Exception:  # noqa: BLE001 - must not raise inside a RolloutWorker
        import logging

        logging.getLogger("rllib_addpolicy_fix.remote").exception(
            "rllib_addpolicy_fix: could not fetch the check at the point of use"
        )
    if checked is not None:
        return checked(worker, *args, **kwargs)
    inner = kwargs.pop("_rllib_addpolicy_fix_inner")
    kwargs.pop("_rllib_addpolicy_fix_check", None)
    if isinstance(inner, str):
        return getattr(worker, inner)(*args, **kwargs)
    return inner(worker, *args, **kwargs)


def checked_call(
    worker: Any,
    *args: Any,
    _rllib_addpolicy_fix_inner: Any,
    _rllib_addpolicy_fix_check: dict[str, Any],
    **kwargs: Any,
) -> Any:
    """RLlib's ``func(worker, *args, **kwargs)``, after the point-of-use check; with the
    worker's audit figures attached when the driver asked for them (``harvest``)."""
    check = _resolved(worker, _rllib_addpolicy_fix_check)
    started = _check(worker, check) if check is not None else None  # never raises
    inner = _rllib_addpolicy_fix_inner
    if isinstance(inner, str):  # a method name, as RLlib's actor manager also accepts
        result = getattr(worker, inner)(*args, **kwargs)
    else:
        result = inner(worker, *args, **kwargs)
    return _audited(worker, check, started, result) if check is not None else result


def _resolved(worker: Any, carried: dict[str, Any]) -> dict[str, Any] | None:
    """What a call carries (``ref``, ``catch_up``, ``harvest``) with the expected versions and
    the catalog behind ``ref``: fetched once per change and kept on the worker (only the
    latest); None if it cannot be had (the call then runs unchecked, logged)."""
    try:
        ref = carried["ref"]
        cached = vars(worker).get(CHECK)
        if cached is None or cached[0] != ref.hex():
            import ray

            cached = vars(worker)[CHECK] = (ref.hex(), ray.get(ref))
        return {**carried, **cached[1]}
    except Exception:  # noqa: BLE001 - must not raise inside a RolloutWorker
        logger.exception("rllib_addpolicy_fix: could not fetch the expected versions")
        return None


def _check(worker: Any, check: dict[str, Any]) -> dict[str, int] | None:
    """The versions this call starts with, ``{policy_id: version}`` (0: none the driver
    delivered), after catching up where allowed; None if the check itself failed."""
    try:
        expect: dict[str, tuple[int, str]] = check["expect"]
        versions = held(worker)
        policy_map = worker.policy_map
        now = {
            pid: _version_now(worker, versions, policy_map, pid, *expected)
            for pid, expected in expect.items()
        }
        behind = {pid: version for pid, version in now.items() if version != expect[pid][0]}
        figures = _figures(worker)
        if behind:
            lag = max(expect[pid][0] - version for pid, version in behind.items())
            figures["max_version_lag"] = max(figures["max_version_lag"], lag)
            if check.get("catch_up"):
                caught = _catch_up(worker, check, sorted(behind))
                now.update(caught)
                figures["caught_up"] += bool(caught)
        return now
    except Exception:  # noqa: BLE001 - must not raise inside a RolloutWorker
        logger.exception("rllib_addpolicy_fix: the point-of-use check failed")
        return None


def _version_now(
    worker: Any,
    versions: dict[str, list[Any]],
    policy_map: Any,
    pid: str,
    version: int,
    digest: str,
) -> int:
    """The version of ``pid`` this worker holds: its own record while the policy's stamp is
    unchanged, else by digest (the driver's version, or the one it held before); 0 for none."""
    if pid not in policy_map:
        versions.pop(pid, None)
        return 0
    record = versions.get(pid)
    now = stamp(worker, policy_map, pid)
    if record is not None and now is not None and record[2] == now:
        return int(record[0])
    found = weights_digest(read_weights(policy_map, pid))
    if found == digest:
        versions[pid] = [version, digest, now]
        return version
    if record is not None and found == record[1]:
        record[2] = now
        return int(record[0])
    versions.pop(pid, None)  # changed by something other than a delivery: no version
    return 0


def _catch_up(worker: Any, check: dict[str, Any], policy_ids: list[str]) -> dict[str, int]:
    """Bring ``policy_ids`` to the driver's delivered version from the catalog in the object
    store (adding a policy added at run time that this process lacks); returns those that
    reached it, each confirmed by digest and published (``remote_state.publish``)."""
    import ray

    catalog = check["catalog"]
    entries: dict[str, tuple[str, Any, Any]] = catalog["entries"]
    payloads: dict[Any, Any] = {}

    def fetched(ref: Any) -> Any:
        if ref not in payloads:
            payloads[ref] = ray.get(ref)
        return payloads[ref]

    caught: dict[str, int] = {}
    added = False
    for pid in sorted(policy_ids, key=lambda p: catalog["order"].get(p, 0)):
        entry = entries.get(pid)
        if entry is None:
            continue  # nothing delivered to catch up to (a change not sent yet)
        kind, ref, add_ref = entry
        built_here = False
        try:
            if pid not in worker.policy_map:
                if add_ref is None:
                    continue  # not added at run time by the fix: RLlib's restore brings it
                added_with = fetched(add_ref)
                kwargs = dict(added_with["kwargs"][pid], policy_state=added_with["states"][pid])
                if catalog.get("routing") is not None:  # set once below, as the driver has them
                    kwargs.update(policy_mapping_fn=None, policies_to_train=None)
                with only_new_policy_callbacks(worker, pid):
                    worker.add_policy(**kwargs)
                added = built_here = True
            payload = fetched(ref)
            weights = payload["states"][pid]["weights"] if kind == "add" else payload[pid]
            version, digest = check["expect"][pid]
            outcome = set_policy_weights(worker, {pid: weights}, {pid: (version, digest)})
            if pid in outcome.get("published", ()):
                caught[pid] = version
        except Exception:  # noqa: BLE001 - must not raise inside a RolloutWorker
            logger.exception("rllib_addpolicy_fix: could not catch up policy %r", pid)
        if built_here and pid not in caught:
            try:  # nothing half-added: the next call tries again from scratch
                worker.remove_policy(policy_id=pid)
            except Exception:  # noqa: BLE001 - must not raise inside a RolloutWorker
                logger.exception("rllib_addpolicy_fix: could not remove half-added %r", pid)
    if added and catalog.get("routing") is not None:
        mapping_fn, to_train = catalog["routing"]
        try:
            worker.set_policy_mapping_fn(mapping_fn)
            worker.set_is_policy_to_train(to_train)
        except Exception:  # noqa: BLE001 - must not raise inside a RolloutWorker
            logger.exception("rllib_addpolicy_fix: could not restore the policy mapping")
    return caught


def _audited(
    worker: Any, check: dict[str, Any], started: dict[str, int] | None, result: Any
) -> Any:
    """Count ``result`` if it holds a sample batch, and when the driver will read it
    (``harvest``), attach the figures gathered so far to that batch (:data:`AUDITED`); the
    result itself is RLlib's, unchanged."""
    try:
        batch = batch_in(result)
        if started is not None and batch is not None:
            _count(_figures(worker), check["expect"], started, batch)
        figures = _figures(worker)
        if check.get("harvest") and batch is not None and any(figures.values()):
            setattr(batch, AUDITED, dict(figures))
            vars(worker)[FIGURES] = dict.fromkeys(FIGURE_NAMES, 0)
    except Exception:  # noqa: BLE001 - must not raise inside a RolloutWorker
        logger.exception("rllib_addpolicy_fix: could not count the sample")
    return result


def batch_in(result: Any) -> Any:
    """The sample batch a result holds: the result itself, or the first item of a tuple (2.60's
    ``(batch, metrics, ...)``); None for anything else."""
    batch = result[0] if isinstance(result, tuple) and result else result
    return batch if callable(getattr(batch, "env_steps", None)) else None


def _count(
    figures: dict[str, int],
    expect: dict[str, tuple[int, str]],
    started: dict[str, int],
    batch: Any,
) -> None:
    env_steps = batch.env_steps
    policy_batches = getattr(batch, "policy_batches", None)
    in_batch = list(policy_batches) if isinstance(policy_batches, dict) else ["default_policy"]
    kept = [pid for pid in in_batch if pid in expect]
    if not kept:
        return
    steps = int(env_steps())
    stale = [pid for pid in kept if started.get(pid) != expect[pid][0]]
    figures["sampled_batches"] += len(kept)
    figures["sampled_env_steps"] += steps
    figures["stale_batches"] += len(stale)
    figures["stale_env_steps"] += steps if stale else 0


def _figures(worker: Any) -> dict[str, int]:
    figures: dict[str, int] | None = vars(worker).get(FIGURES)
    if figures is None:
        figures = vars(worker)[FIGURES] = dict.fromkeys(FIGURE_NAMES, 0)
    return figures
