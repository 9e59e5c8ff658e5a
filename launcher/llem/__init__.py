"""llem: the host-side launcher of llenergymeasure (no torch, no CUDA libraries)."""

__version__ = "0.1.0"
