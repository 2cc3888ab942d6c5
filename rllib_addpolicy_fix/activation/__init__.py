"""Reaching new processes: the start-up hook the wheel's ``.pth`` and Ray's worker setup hook
run, and the job's runtime environment that carries the fix to Tune trials and Ray actors."""
