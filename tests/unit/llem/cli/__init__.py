"""CLI tests (a package: test_rerun.py here and in ../study/ share a basename)."""
