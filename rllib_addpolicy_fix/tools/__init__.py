"""What users run: ``verify``, ``doctor``, and the demo league with its game."""
