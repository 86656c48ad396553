"""`python -m woodpecker.cli ...` is `wpk ...`."""

import sys

from woodpecker.cli.main import main

sys.exit(main())
