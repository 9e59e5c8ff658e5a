"""``python -m llem_harness RUN_DIR``: run one experiment and exit with a contract code."""

from __future__ import annotations

import sys

from llem_harness.runner import main

if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
