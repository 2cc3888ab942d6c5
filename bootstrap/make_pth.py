"""Build the one-line ``rllib_addpolicy_fix.pth`` from ``_rllib_addpolicy_fix_bootstrap.py``.

The line executes the bootstrap's source inline (docstrings dropped, so there is less to
compile), because importing a module from site-packages at every interpreter start costs more
than the 2 ms budget when bytecode is not cached. Standard library only.
"""

from __future__ import annotations

import ast
from pathlib import Path

BOOTSTRAP = Path(__file__).with_name("_rllib_addpolicy_fix_bootstrap.py")
PTH_NAME = "rllib_addpolicy_fix.pth"


def pth_line(source: str | None = None) -> str:
    tree = ast.parse(BOOTSTRAP.read_text() if source is None else source)
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
