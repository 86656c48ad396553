"""Runs one case's code in this (fresh) process: `python child.py CODE_FILE` (the verdict goes
to $WPK_CASE_RESULT)."""

from __future__ import annotations

import sys
from pathlib import Path

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))
sys.path.insert(0, str(HERE.parents[1] / "python"))

namespace: dict = {"__name__": "__case__"}
exec("from casekit import *", namespace)
code = Path(sys.argv[1]).read_text()
exec(compile(code, sys.argv[1], "exec"), namespace)
