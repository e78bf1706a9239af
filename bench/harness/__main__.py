"""``python -m harness`` (run from bench/): see harness.cli."""

import sys

from harness.cli import main

sys.exit(main())
