"""Patching RLlib: the table of every attribute the fix wraps, installing it all or nothing, and
the wrappers it names, one file per RLlib class they sit on."""
