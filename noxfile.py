"""Test matrix: one environment per Ray release, each with that release's pins.

``python -m nox`` runs everything CI runs; ``python -m nox -s "tests(ray='2.60.0')"`` one version.
"""

from __future__ import annotations

import nox

nox.options.default_venv_backend = "venv"
nox.options.reuse_existing_virtualenvs = True
nox.options.error_on_missing_interpreters = True

TORCH = "torch==2.13.0"  # the local CPU wheel; plain "torch" pulls gigabytes of CUDA packages

#: Ray release -> the pins its RLlib needs on Python 3.11 (shared/ray-api-drift.md, trap 8).
_OLD_NUMPY = ["numpy<2", "pyarrow<18", "pandas<2.3"]
RAY_PINS: dict[str, list[str]] = {
    "2.5.1": ["gymnasium==0.26.3", "pydantic<2", "setuptools==69.5.1", *_OLD_NUMPY],
    "2.10.0": ["gymnasium==0.28.1", *_OLD_NUMPY],
    "2.30.0": ["gymnasium==0.28.1", *_OLD_NUMPY],
    "2.40.0": ["gymnasium==1.0.0", *_OLD_NUMPY],
    "2.60.0": ["gymnasium==1.2.2"],
}


@nox.session(python="3.11")  # type: ignore[untyped-decorator]
@nox.parametrize("ray", list(RAY_PINS))  # type: ignore[untyped-decorator]
def tests(session: nox.Session, ray: str) -> None:
    session.install(TORCH)
    session.install(f"ray[rllib]=={ray}", *RAY_PINS[ray])
    session.install(".[test]")
    session.run("pytest", "--durations=25", *session.posargs, env={"RAY_DEDUP_LOGS": "0"})


@nox.session(python="3.11")  # type: ignore[untyped-decorator]
def typecheck(session: nox.Session) -> None:
    session.install("mypy>=1.8", "packaging>=22", "wrapt>=2.4", "numpy", "gymnasium", "nox")
    session.run("mypy", "rllib_addpolicy_fix", "bootstrap", "noxfile.py")
