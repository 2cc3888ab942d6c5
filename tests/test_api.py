"""The public API's contract: activation, idempotence, exact uninstall, staying out of the way."""

from __future__ import annotations

import os
import subprocess
import sys
import textwrap

import pytest

import rllib_addpolicy_fix as fix
from rllib_addpolicy_fix import _compat, _settings
from rllib_addpolicy_fix.patching import table as _patch_table

pytestmark = pytest.mark.timeout(120)


def run_python(code: str, **env: str) -> subprocess.CompletedProcess[str]:
    environment = {k: v for k, v in os.environ.items() if k != _settings.ENV_VAR} | env
    return subprocess.run(
        [sys.executable, "-c", textwrap.dedent(code)],
        capture_output=True,
        text=True,
        env=environment,
        timeout=110,
    )


def expected_targets() -> list[_patch_table.Patch]:
    version = _compat.installed_ray_version()
    assert version is not None
    return _patch_table.defined(version)


def rllib_attributes() -> dict[str, object]:
    import importlib

    version = _compat.installed_ray_version()
    assert version is not None
    found = {}
    for target in _patch_table.defined(version):
        holder = target.holder(importlib.import_module(target.module))
        found[target.name] = vars(holder)[target.attribute]
    return found


def test_public_api_is_listed_in_all() -> None:
    for name in ("install", "uninstall", "is_installed", "sync", "verify", "assert_consistent"):
        assert name in fix.__all__ and callable(getattr(fix, name))


def test_import_does_not_import_ray() -> None:
    done = run_python("""
        import sys, rllib_addpolicy_fix as fix
        assert fix.is_installed()
        assert not [m for m in sys.modules if m == "ray" or m.startswith("ray.")], "ray imported"
        print("ok")
    """)
    assert done.stdout.strip() == "ok", done.stderr


@pytest.mark.parametrize("order", ["shim first", "rllib first"])
def test_activates_whether_imported_before_or_after_rllib(order: str) -> None:
    imports = ["import rllib_addpolicy_fix as fix", "import ray.rllib.algorithms.ppo"]
    if order == "rllib first":
        imports.reverse()
    done = run_python(
        "\n".join(imports)
        + """
import rllib_addpolicy_fix as fix
print(len(fix.patching.install.wrapped_targets()))
"""
    )
    assert done.stdout.strip() == str(len(expected_targets())), done.stderr


def test_uninstall_restores_the_original_functions_exactly() -> None:
    fix.uninstall()
    originals = rllib_attributes()
    try:
        assert fix.install()
        wrapped = rllib_attributes()
        assert all(wrapped[name] is not originals[name] for name in originals)
        assert all(wrapped[name].__wrapped__ is originals[name] for name in originals)
        fix.uninstall()
        assert not fix.is_installed()
        restored = rllib_attributes()
        assert all(restored[name] is originals[name] for name in originals)
    finally:
        fix.install()


def test_second_install_is_a_no_op() -> None:
    fix.uninstall()
    originals = rllib_attributes()
    assert fix.install()
    first = rllib_attributes()
    assert fix.install()
    second = rllib_attributes()
    assert all(second[name] is first[name] for name in first)
    assert all(second[name].__wrapped__ is originals[name] for name in first)  # no double wrap


@pytest.mark.parametrize("value", ["0", "off"])
def test_kill_switch_patches_nothing_and_says_so_once(value: str) -> None:
    done = run_python(
        """
        import rllib_addpolicy_fix as fix
        fix.install(); fix.install()
        import ray.rllib.algorithms.ppo
        print(fix.is_installed(), len(fix.patching.install.wrapped_targets()))
    """,
        RLLIB_ADDPOLICY_FIX=value,
    )
    assert done.stdout.strip() == "False 0", done.stderr
    assert done.stderr.count("disabled by RLLIB_ADDPOLICY_FIX") == 1, done.stderr


def test_unsupported_ray_patches_nothing_and_says_so_once() -> None:
    done = run_python("""
        import os
        os.environ["RLLIB_ADDPOLICY_FIX"] = "0"      # keep the import-time install out of it
        import rllib_addpolicy_fix as fix
        from rllib_addpolicy_fix import _compat
        from packaging.specifiers import SpecifierSet
        del os.environ["RLLIB_ADDPOLICY_FIX"]
        _compat.versions.SUPPORTED_RAY = SpecifierSet("<2.5")   # pretend this Ray is out of range
        print(fix.install(), fix.install())
        import ray.rllib.algorithms.ppo
        print(fix.is_installed(), len(fix.patching.install.wrapped_targets()))
    """)
    assert done.stdout.split() == ["False", "False", "False", "0"], done.stderr
    assert done.stderr.count("outside the supported range") == 1, done.stderr
