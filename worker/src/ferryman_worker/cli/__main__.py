"""``python -m ferryman_worker.cli``."""

import sys

from ferryman_worker.cli import main

sys.exit(main())
