"""The GPU check: every paper's smoke profile on CUDA, then the first optimiser steps of each ``full``
preset timed, in one command sized for a lent GPU host that has no network (``reproduce gpu-check``).

- ``plan``: which jobs run, in which order, with which switches where an asset is absent, and how
  the time budget is shared between them (pure, no torch).
- ``child``: one job in a process of its own (``python -m reproductions.gpucheck.child JOB.json``),
  so that a hung, crashed or out-of-memory paper costs only its own time limit.
- ``check``: the parent: runs the jobs, kills one at its limit, writes ``gpu-check.json`` and
  ``summary.md`` after every job (a check stopped from outside still leaves what it measured).
- ``prepare``: here, with a network: the wheels the host lacks, the small data sets as one archive,
  the size of what travels, and the exact command to give the device tool.
"""
