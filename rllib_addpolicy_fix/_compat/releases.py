"""The Ray releases the fix supports and the ones CI tests, with each test environment's pins.

The one source for them: the runtime range check, ``doctor``, the nox matrix and the README's
table read this file (a test compares the README with it). Data only, standard library only:
``noxfile.py`` loads it by path, without importing the package or its dependencies.
"""

#: Ray releases the shim patches (a PEP 440 specifier). Outside it, it patches nothing.
SUPPORTED_RAY = ">=2.5.0,<2.61"

#: Python version CI runs on.
PYTHON = "3.11"

#: The CPU build of torch every test environment installs (plain "torch" pulls CUDA packages).
TORCH = "torch==2.13.0"

_OLD_NUMPY = ("numpy<2", "pyarrow<18", "pandas<2.3")

#: Releases CI runs the behaviour tests on, oldest first, each with the pins its RLlib needs on
#: Python 3.11. Each marks an API boundary of RLlib's legacy stack. (2.10.0, pinned like 2.30.0,
#: left the list to keep CI within its time: each of its API points is 2.5.1's or 2.30.0's.)
TESTED_RAY: dict[str, tuple[str, ...]] = {
    "2.5.1": ("gymnasium==0.26.3", "pydantic<2", "setuptools==69.5.1", *_OLD_NUMPY),
    "2.30.0": ("gymnasium==0.28.1", *_OLD_NUMPY),
    "2.40.0": ("gymnasium==1.0.0", *_OLD_NUMPY),
    "2.60.0": ("gymnasium==1.2.2",),
}
