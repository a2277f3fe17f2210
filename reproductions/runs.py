"""The old name of ``reproductions.run``, kept while app/results.py and older tests import it.

It is the same module object, not a copy, so that setting ``runs.RUNS_DIR`` (as tests do) changes
what ``run.new_run_folder`` reads. Phase B removes this file once nothing imports ``reproductions.runs``.
"""

import sys

from reproductions import run

sys.modules[__name__] = run
