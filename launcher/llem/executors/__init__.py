"""Executors: where a whole study's runs are scheduled (the local process, Slurm arrays)."""
