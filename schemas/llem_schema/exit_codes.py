"""Harness exit codes: part of the contract; the host maps each to a one-line message."""

from __future__ import annotations

from enum import IntEnum


class ExitCode(IntEnum):
    OK = 0
    INTERNAL = 1
    BAD_CONFIG = 2
    BACKEND_FAILURE = 3
    OUT_OF_MEMORY = 4
    MODEL_NOT_FOUND = 5
    ENERGY_UNAVAILABLE = 6
    BACKEND_NOT_INSTALLED = 7
    NO_GPU = 8
    INTERRUPTED = 130


MESSAGES: dict[int, str] = {
    ExitCode.OK: "ok",
    ExitCode.INTERNAL: "the harness crashed; see harness.log in the run directory",
    ExitCode.BAD_CONFIG: "the harness rejected the experiment config; see harness.log",
    ExitCode.BACKEND_FAILURE: "the inference backend failed; see harness.log",
    ExitCode.OUT_OF_MEMORY: "out of GPU/host memory: lower workload.batch_size or max tokens",
    ExitCode.MODEL_NOT_FOUND: "model not found: check the path or HF cache (no hub download here)",
    ExitCode.ENERGY_UNAVAILABLE: "the requested measurement.energy_backend is not available here",
    ExitCode.BACKEND_NOT_INSTALLED: "the backend's package is not installed in this environment "
    "(install the matching extra or use its container image)",
    ExitCode.NO_GPU: "the experiment needs a GPU but none is visible (check --gpus / drivers)",
    ExitCode.INTERRUPTED: "interrupted",
    137: "killed (SIGKILL, often the kernel OOM killer): lower the batch size",
}


def describe(code: int) -> str:
    """One-line human message for a harness exit code."""
    if code in MESSAGES:
        return MESSAGES[code]
    if code < 0:
        return f"killed by signal {-code}"
    return f"harness exited with code {code}; see harness.log"
