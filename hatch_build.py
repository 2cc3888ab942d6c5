"""Puts the start-up hook ``rllib_addpolicy_fix.pth`` into regular and editable wheels.

The .pth line is generated from ``rllib_addpolicy_fix/activation/startup_hook.py`` by
``bootstrap/make_pth.py``. Editable wheels take their extra files from
``force_include_editable``, regular ones from ``force_include``.
"""

from __future__ import annotations

import importlib.util
import tempfile
from pathlib import Path
from typing import Any

from hatchling.builders.hooks.plugin.interface import BuildHookInterface


class StartupHook(BuildHookInterface):  # type: ignore[misc,type-arg]
    def initialize(self, version: str, build_data: dict[str, Any]) -> None:
        spec = importlib.util.spec_from_file_location(
            "make_pth", Path(self.root) / "bootstrap" / "make_pth.py"
        )
        assert spec is not None and spec.loader is not None
        make_pth = importlib.util.module_from_spec(spec)
        spec.loader.exec_module(make_pth)
        self._directory = tempfile.TemporaryDirectory()
        pth = make_pth.write_pth(Path(self._directory.name))
        key = "force_include_editable" if version == "editable" else "force_include"
        build_data[key][str(pth)] = make_pth.PTH_NAME

    def finalize(self, version: str, build_data: dict[str, Any], artifact_path: str) -> None:
        self._directory.cleanup()
