"""The experiment as a sequence of phases, each a small function over one :class:`RunContext`.

The order lives in :func:`llem_harness.runner.run_experiment`; each module here does one
step (load, instruments, baseline, warmup, measured window, prefill window, FLOPs) and
records what it measured on the context, so ``report/`` can turn it into a result.
"""
