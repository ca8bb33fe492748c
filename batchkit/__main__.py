"""``python -m batchkit`` is the ``batchkit`` command (the job wrapper relies on it)."""

import sys

from batchkit.cli import main

sys.exit(main())
