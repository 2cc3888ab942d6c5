"""CI: lint, type check, and the behaviour tests in one environment per tested Ray release.

``python -m nox`` runs everything CI runs; ``python -m nox -s "tests(ray='2.60.0')"`` one release.
The releases and their pins come from ``rllib_addpolicy_fix/_releases.py`` (loaded by path: the
package's dependencies are not installed where nox runs).
"""

from __future__ import annotations

import runpy
from pathlib import Path

import nox

nox.options.default_venv_backend = "venv"
nox.options.reuse_existing_virtualenvs = True
nox.options.error_on_missing_interpreters = True

RELEASES = runpy.run_path(str(Path(__file__).parent / "rllib_addpolicy_fix" / "_releases.py"))
PYTHON: str = RELEASES["PYTHON"]
TORCH: str = RELEASES["TORCH"]
RAY_PINS: dict[str, tuple[str, ...]] = RELEASES["TESTED_RAY"]
#: Test-only packages per release: RLlib's open_spiel self-play example is tested on the newest.
TEST_ONLY_PINS: dict[str, tuple[str, ...]] = {list(RAY_PINS)[-1]: ("open_spiel==2.0.2",)}
#: The oldest Python the package declares (``requires-python``); vermin checks the code for it.
OLDEST_PYTHON = "3.9"


@nox.session(python=PYTHON)
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


@nox.session(python=PYTHON)
def typecheck(session: nox.Session) -> None:
    session.install("mypy>=1.8", "packaging>=22", "wrapt>=2.4", "numpy", "gymnasium", "nox")
    session.run("mypy", "rllib_addpolicy_fix", "bootstrap", "noxfile.py")


#: pip compiles every module it installs, though a test imports little of torch and Ray;
#: skipping that halves each environment's install. The tests' processes then compile what they
#: import, once, which needs bytecode writing on where the machine turns it off (an empty
#: ``PYTHONDONTWRITEBYTECODE`` counts as unset).
NO_COMPILE = "--no-compile"
WRITE_BYTECODE = {"PYTHONDONTWRITEBYTECODE": ""}


@nox.session(python=PYTHON)
@nox.parametrize("ray", list(RAY_PINS))
def tests(session: nox.Session, ray: str) -> None:
    session.install(NO_COMPILE, TORCH)
    session.install(NO_COMPILE, f"ray[rllib]=={ray}", *RAY_PINS[ray], *TEST_ONLY_PINS.get(ray, ()))
    session.install(".[test]")
    session.run(
        "pytest", "--durations=25", *session.posargs, env={"RAY_DEDUP_LOGS": "0", **WRITE_BYTECODE}
    )
