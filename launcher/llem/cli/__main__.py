"""``python -m llem.cli``: the same entry point as the ``llem`` console script."""

from llem.cli import main

main()
