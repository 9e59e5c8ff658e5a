"""llem: the host-side launcher of llenergymeasure (no torch, no CUDA libraries).

The Python API (``llem.run_experiment``, ``llem.run_study``, ``llem.load_results``) lives in
:mod:`llem.api` and is imported on first use, so ``import llem`` and ``llem --help`` stay light.
"""

from typing import Any

__version__ = "0.1.0"
__all__ = ["__version__", "load_results", "run_experiment", "run_study"]


def __getattr__(name: str) -> Any:
    if name in ("run_experiment", "run_study", "load_results", "StudyRun"):
        from llem import api

        return getattr(api, name)
    raise AttributeError(f"module 'llem' has no attribute {name!r}")
