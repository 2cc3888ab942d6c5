"""Build the one-line ``rllib_addpolicy_fix.pth`` from the start-up hook,
``rllib_addpolicy_fix/activation/startup_hook.py``.

The line executes the hook's source inline and calls ``arm()`` (docstrings dropped, so there is
less to compile), because importing a module from site-packages at every interpreter start
costs more than the 2 ms budget when bytecode is not cached. Standard library only.
"""

from __future__ import annotations

import ast
from pathlib import Path

PACKAGE = Path(__file__).resolve().parent.parent / "rllib_addpolicy_fix"
BOOTSTRAP = PACKAGE / "activation" / "startup_hook.py"
PTH_NAME = "rllib_addpolicy_fix.pth"
#: Appended to the hook's source: arm at interpreter start, never fail it.
_NOT_AT_START = frozenset({"worker_setup_hook"})
_CALL = "\ntry:\n    arm()\nexcept Exception:\n    pass\n"


def pth_line(source: str | None = None) -> str:
    source = BOOTSTRAP.read_text() if source is None else source
    tree = ast.parse(source + _CALL)
    # Interpreter start only arms; the worker setup hook is for Ray jobs (compiled for nothing).
    tree.body = [
        node
        for node in tree.body
        if not (isinstance(node, ast.FunctionDef) and node.name in _NOT_AT_START)
    ]
    for node in ast.walk(tree):
        body = getattr(node, "body", None)
        if isinstance(body, list) and body and _is_docstring(body[0]):
            del body[0]
            if not body:
                body.append(ast.Pass())
    code = ast.unparse(tree)
    return f"import sys; exec({code!r}, {{'__name__': 'rllib_addpolicy_fix.pth'}})\n"


def _is_docstring(statement: ast.stmt) -> bool:
    return (
        isinstance(statement, ast.Expr)
        and isinstance(statement.value, ast.Constant)
        and isinstance(statement.value.value, str)
    )


def write_pth(directory: Path) -> Path:
    target = directory / PTH_NAME
    target.write_text(pth_line())
    return target
