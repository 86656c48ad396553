"""Fallback for LLVM's `not`: runs a command and succeeds iff it fails (exit status != 0)."""

import subprocess
import sys

sys.exit(0 if subprocess.call(sys.argv[1:]) != 0 else 1)
