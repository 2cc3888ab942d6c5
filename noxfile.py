"""CI: lint, type check, and the behaviour tests in one environment per tested Ray release.

``python -m nox`` runs everything CI runs, one session after another (``bash .ci/run`` runs the
same sessions two at a time); ``python -m nox -s "tests(ray='2.60.0')"`` one release;
``python -m nox -t quick`` the quick tier (lint, type check, the core tests with their controls
on the newest release). The releases and their pins come from
``rllib_addpolicy_fix/_compat/releases.py`` (loaded by path: the package's dependencies are not
installed where nox runs).
"""

from __future__ import annotations

import os
import runpy
from pathlib import Path

import nox

#: uv builds each environment from one shared cache: a release's environment installs in
#: seconds where pip took about a minute (torch and Ray unpacked again for each). It does not
#: read pip's configuration, so it is pointed at pip's own find-links (where the CPU build of
#: torch lies on a machine that provides one; without it both would take torch from the index).
nox.options.default_venv_backend = "uv"
nox.options.reuse_existing_virtualenvs = True
nox.options.error_on_missing_interpreters = True
#: ``python -m nox`` runs these; the quick tier's ``core`` repeats a part of them.
nox.options.sessions = ["lint", "typecheck", "tests"]
if os.environ.get("PIP_FIND_LINKS") and not os.environ.get("UV_FIND_LINKS"):
    os.environ["UV_FIND_LINKS"] = os.environ["PIP_FIND_LINKS"]

RELEASES = runpy.run_path(
    str(Path(__file__).parent / "rllib_addpolicy_fix" / "_compat" / "releases.py")
)
PYTHON: str = RELEASES["PYTHON"]
TORCH: str = RELEASES["TORCH"]
RAY_PINS: dict[str, tuple[str, ...]] = RELEASES["TESTED_RAY"]
#: Test-only packages per release: RLlib's open_spiel self-play example is tested on the newest.
TEST_ONLY_PINS: dict[str, tuple[str, ...]] = {list(RAY_PINS)[-1]: ("open_spiel==2.0.2",)}
#: The oldest Python the package declares (``requires-python``); vermin checks the code for it.
OLDEST_PYTHON = "3.9"


@nox.session(python=PYTHON, tags=["quick"])
def lint(session: nox.Session) -> None:
    session.install("ruff==0.17.6", "vermin==1.9.2")  # pinned: formatting changes between releases
    session.run("ruff", "check", ".")
    session.run("ruff", "format", "--check", ".")
    session.run(
        "vermin",
        f"--target={OLDEST_PYTHON}-",
        "--violations",
        "--no-tips",
        "rllib_addpolicy_fix",
        "bootstrap",
    )


@nox.session(python=PYTHON, tags=["quick"])
def typecheck(session: nox.Session) -> None:
    session.install("mypy>=1.8", "packaging>=22", "wrapt>=2.4", "numpy", "gymnasium", "nox")
    session.run("mypy", "rllib_addpolicy_fix", "bootstrap", "noxfile.py", ".ci/lanes.py")


#: uv compiles nothing it installs (a test imports little of torch and Ray). The tests'
#: processes then compile what they import, once, which needs bytecode writing on where the
#: machine turns it off (an empty ``PYTHONDONTWRITEBYTECODE`` counts as unset).
WRITE_BYTECODE = {"PYTHONDONTWRITEBYTECODE": ""}


def install_release(session: nox.Session, ray: str) -> None:
    """torch first, alone: ``TORCH`` and 2.5.1's pinned setuptools cannot be resolved together
    (torch 2.13 declares setuptools>=77, which it needs only to build extensions)."""
    session.install(TORCH)
    session.install(f"ray[rllib]=={ray}", *RAY_PINS[ray], *TEST_ONLY_PINS.get(ray, ()))
    # uv keeps a built local package until its pyproject.toml changes: rebuild it every time,
    # so a reused environment tests the working tree.
    session.install("--reinstall-package", "rllib-addpolicy-fix", ".[test]")


#: Every ``ray.init()`` of the tests and of the scripts they start starts a Ray instance of its
#: own: without an address, Ray would join the instance another session (``bash .ci/run`` runs
#: two side by side) left its address for.
OWN_RAY = {"RAY_ADDRESS": "local"}


def run_pytest(session: nox.Session, *args: str) -> None:
    env = {"RAY_DEDUP_LOGS": "0", **OWN_RAY, **WRITE_BYTECODE}
    session.run("pytest", "--durations=25", *args, env=env)


@nox.session(python=PYTHON)
@nox.parametrize("ray", list(RAY_PINS))
def tests(session: nox.Session, ray: str) -> None:
    install_release(session, ray)
    run_pytest(session, *session.posargs)


@nox.session(python=PYTHON, tags=["quick"])
def core(session: nox.Session) -> None:
    """The core behaviour tests on the newest tested Ray, each with its RLlib-alone control."""
    install_release(session, list(RAY_PINS)[-1])
    run_pytest(session, "tests/test_core.py", *session.posargs)
