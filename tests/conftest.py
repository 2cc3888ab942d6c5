"""One local Ray instance per session; every behaviour test runs with the shim installed and
uninstalled (the ``shim`` fixture), and must see the divergence when it is uninstalled."""

from __future__ import annotations

import contextlib
import os
import sys
from collections.abc import Collection, Iterator
from dataclasses import dataclass
from typing import Any

import pytest

sys.path.insert(0, os.path.dirname(__file__))

import comparisons  # noqa: E402
import ray_compat  # noqa: E402
import rllib_addpolicy_fix as fix  # noqa: E402


@pytest.fixture(scope="session")
def ray_session() -> Iterator[Any]:
    import ray
    import ray.cloudpickle

    import helpers

    ray.cloudpickle.register_pickle_by_value(helpers)  # workers cannot import the tests
    # Logical CPUs: 2 training + 2 evaluation workers + the driver on a 2-core machine.
    ray.init(
        address="local",  # never another session's instance (CI runs two side by side)
        num_cpus=8,
        include_dashboard=False,
        log_to_driver=False,
        configure_logging=False,
        ignore_reinit_error=True,
    )
    yield ray
    ray.shutdown()


@dataclass
class Shim:
    active: bool

    def expect(
        self,
        report: fix.ConsistencyReport,
        policy_id: str | None = None,
        *,
        uncompared: Collection[comparisons.Worker] = (),
    ) -> None:
        """Equal everywhere with the shim; diverging (for ``policy_id``, if given) without it.
        Never by comparing nothing (``comparisons.compared_everywhere``)."""
        if self.active:
            comparisons.expect_equal(report, policy_id, uncompared=uncompared)
        else:
            comparisons.expect_diverged(report, policy_id, uncompared=uncompared)


@contextlib.contextmanager
def shim_mode(mode: str) -> Iterator[Shim]:
    """The shim "installed" or "uninstalled" (RLlib alone) in this process, then installed."""
    if mode == "installed":
        assert fix.install()
    else:
        fix.uninstall()
    try:
        yield Shim(active=mode == "installed")
    finally:
        fix.install()


@pytest.fixture(
    # RLlib alone is shown on the newest tested Ray: that each test can fail needs showing
    # once; the older releases run the fixed half only, to keep CI within its time.
    params=ray_compat.shim_modes(ray_compat.RUNNING == ray_compat.NEWEST, "the newest tested Ray")
)
def shim(request: pytest.FixtureRequest) -> Iterator[Shim]:
    with shim_mode(request.param) as mode:
        yield mode


@pytest.fixture
def build(ray_session: Any) -> Iterator[Any]:
    """``build(config)`` -> a started Algorithm, stopped after the test."""
    built: list[Any] = []

    def _build(config: Any) -> Any:
        algo = config.build()
        built.append(algo)
        return algo

    yield _build
    for algo in built:
        algo.stop()


def pytest_configure(config: pytest.Config) -> None:
    """``.ci/breakages.py``: break the fix on purpose, one named way, for the whole session."""
    name = os.environ.get("RLLIB_ADDPOLICY_FIX_TEST_BREAKAGE")
    if name:
        import breakages

        breakages.apply(name)
