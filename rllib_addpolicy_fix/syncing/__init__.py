"""Keeping remote workers in sync with the driver: what each worker set was sent, held adds,
the bounded broadcast and transport, restarted workers, and the code that runs on the workers."""
