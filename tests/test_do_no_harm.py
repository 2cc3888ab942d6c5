"""A failure in the shim's own work never becomes the user's failure: it is logged once, with
its traceback, and RLlib's call runs and returns as it would without the shim."""

from __future__ import annotations

import logging
import types
from typing import Any

import pytest

import comparisons
import helpers
import ray_compat
import rllib_addpolicy_fix as fix
from rllib_addpolicy_fix import _compat, _guard
from rllib_addpolicy_fix.patching import worker_set as _worker_set
from rllib_addpolicy_fix.syncing import broadcast as _broadcast
from rllib_addpolicy_fix.syncing import held_adds as _held_adds
from rllib_addpolicy_fix.syncing import tracking as _tracking
from rllib_addpolicy_fix.syncing import transport as _transport

pytestmark = [pytest.mark.timeout(300), ray_compat.at_the_ends]


@pytest.fixture(autouse=True)
def fresh_warnings(monkeypatch: pytest.MonkeyPatch) -> None:
    """Each test starts with nothing warned yet (the shim warns once per process)."""
    monkeypatch.setattr(_guard, "warned", set())


class Injected(RuntimeError):
    pass


def fail(*args: Any, **kwargs: Any) -> Any:
    raise Injected("injected into the shim's bookkeeping")


def shim_warnings(caplog: pytest.LogCaptureFixture) -> list[logging.LogRecord]:
    return [
        r
        for r in caplog.records
        if r.name.startswith("rllib_addpolicy_fix") and r.levelno >= logging.WARNING
    ]


def test_failing_bookkeeping_is_logged_once_and_rllib_goes_on(
    build: Any, monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    assert fix.install()
    algo = build(helpers.ppo_config())
    monkeypatch.setattr(_tracking, "record_for", fail)
    monkeypatch.setattr(_tracking, "bind_algorithm", fail)
    caplog.set_level(logging.WARNING)

    helpers.copy_weights(algo, "snap1")  # add_policy: RLlib's own add, unchanged
    helpers.copy_weights(algo, "snap2")
    results = [algo.train() for _ in range(2)]

    assert all(isinstance(result, dict) and "info" in result for result in results)
    group = _compat.training_group(algo)
    remote_ids = [set(ids) for _, ids in _transport.foreach_remote(group, helpers.policy_ids_of)]
    expected = [{"main", "snap1", "snap2"}] * _compat.num_remote_workers(group)
    assert remote_ids == expected  # RLlib's add reached every worker
    warned = shim_warnings(caplog)
    messages = [record.getMessage() for record in warned]
    assert len(messages) == len(set(messages)) >= 2, messages  # each failing step once
    assert all(record.exc_info and record.exc_info[0] is Injected for record in warned)
    assert all("may not be in effect" in message for message in messages)


def test_failing_broadcast_never_fails_train(
    build: Any, monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    assert fix.install()
    algo = build(helpers.ppo_config())
    helpers.copy_weights(algo, "snap1")
    fix.sync(algo)  # the add reached the workers; the change below needs a broadcast
    snap1 = algo.get_policy("snap1")
    snap1.set_weights(helpers.perturbed(snap1.get_weights(), 0.1))
    monkeypatch.setattr(_broadcast, "broadcast", fail)
    caplog.set_level(logging.WARNING)

    result = algo.train()

    assert "info" in result
    assert len(shim_warnings(caplog)) == 1
    monkeypatch.undo()  # the next iteration delivers what the failed broadcast did not
    algo.train()
    comparisons.expect_equal(fix.verify(algo, ["snap1"]), "snap1")


def test_failing_held_add_never_fails_train_and_goes_out_at_the_next_use(
    build: Any, monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    assert fix.install()
    algo = build(helpers.ppo_config())
    helpers.copy_weights(algo, "snap1")
    monkeypatch.setattr(_held_adds, "current_policy_state", fail)
    caplog.set_level(logging.WARNING)

    assert "info" in algo.train()
    assert len(shim_warnings(caplog)) == 1
    monkeypatch.undo()  # still held: the next use sends it
    algo.train()
    report = fix.verify(algo)
    comparisons.expect_consistent(report)
    comparisons.expect_equal(report, "snap1")


def test_failing_evaluation_sync_narrowing_never_fails_evaluate_and_warns_once(
    build: Any, monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    assert fix.install()
    algo = build(helpers.ppo_config(evaluation_workers=1))
    helpers.copy_weights(algo, "snap1")
    algo.evaluate()  # the shim follows the evaluation set from here
    snap1 = algo.get_policy("snap1")
    snap1.set_weights(helpers.perturbed(snap1.get_weights(), 0.1))
    monkeypatch.setattr(_worker_set, "bind", fail)  # reading RLlib's sync call fails
    caplog.set_level(logging.WARNING)

    result = algo.evaluate()

    assert isinstance(result, dict)
    assert len(shim_warnings(caplog)) == 1, [r.getMessage() for r in shim_warnings(caplog)]
    monkeypatch.undo()
    algo.evaluate()
    report = fix.verify(algo)
    comparisons.expect_consistent(report)
    comparisons.expect_equal(report, "snap1")


def test_refusals_the_shim_raises_on_purpose_still_raise(build: Any) -> None:
    assert fix.install()
    algo = build(helpers.ppo_config())
    main = algo.get_policy("main")
    with pytest.raises(KeyError, match="already exists"):
        algo.add_policy(
            "main",
            type(main),
            observation_space=main.observation_space,
            action_space=main.action_space,
        )
    with pytest.raises(TypeError, match="cannot be pickled"):
        unpicklable = _Unpicklable()
        algo.add_policy(
            "snap",
            type(main),
            observation_space=main.observation_space,
            action_space=main.action_space,
            policies_to_train=unpicklable,
        )


class _Unpicklable:
    def __call__(self, policy_id: str, batch: Any = None) -> bool:
        return True

    def __reduce__(self) -> Any:
        raise TypeError("not picklable")


def test_an_iteration_that_bypasses_the_broadcast_is_reported_once_and_in_verify(
    build: Any, monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    """A worker set whose remote calls skip the shim's wrappers (forced here: RLlib's own
    functions set on the instance) cannot get its pending weights before sampling: the shim
    says so once, and ``verify()`` carries the reason next to the difference it shows."""
    assert fix.install()
    algo = build(helpers.ppo_config())
    algo.train()
    group = _compat.training_group(algo)
    for name, attribute in vars(type(group)).items():
        if name.startswith("foreach") and hasattr(attribute, "__wrapped__"):
            monkeypatch.setattr(
                group, name, types.MethodType(attribute.__wrapped__, group), raising=False
            )
    caplog.set_level(logging.WARNING)

    helpers.copy_weights(algo, "snap1")
    algo.train()
    algo.train()

    report = fix.verify(algo, ["snap1"])
    assert report.max_abs_diff("snap1") > 0.0  # what the bypass costs
    bypass = [r.getMessage() for r in shim_warnings(caplog) if "bypasses" in r.getMessage()]
    assert len(bypass) == 1 and "snap1" in bypass[0], bypass
    assert any("sync(algo)" in note for note in report.notes), report.notes
    assert "note:" in str(report)
    fix.sync(algo)  # what the warning tells the user to do
    comparisons.expect_equal(fix.verify(algo, ["snap1"]), "snap1")
