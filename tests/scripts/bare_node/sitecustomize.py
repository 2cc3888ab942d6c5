"""On ``PYTHONPATH`` of a test node: its Python cannot import ``rllib_addpolicy_fix`` from any
installed copy, only from a Ray job's shipped ``py_modules``, as on a node that never had the
package installed. Tests only."""

import sys
from importlib.machinery import PathFinder


class HideInstalledShim:
    @classmethod
    def find_spec(cls, fullname, path=None, target=None):  # type: ignore[no-untyped-def]
        if fullname != "rllib_addpolicy_fix":
            return None
        shipped = [entry for entry in sys.path if "runtime_resources" in entry]
        spec = PathFinder.find_spec(fullname, shipped)
        if spec is None:
            raise ModuleNotFoundError(f"No module named {fullname!r}", name=fullname)
        return spec


sys.meta_path.insert(0, HideInstalledShim)
