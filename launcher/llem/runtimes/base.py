"""Runtime interface: how one experiment (one run directory) is executed.

Every runtime takes the same run directory (``experiment.json`` already written by the
host) and leaves the same files behind (``result.json``, ``timeseries.parquet``,
``harness.log``). The host reads the result the same way whatever ran it.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from dataclasses import dataclass, field
from pathlib import Path


@dataclass
class RunRequest:
    """What the launcher asks a runtime to do for one run."""

    run_dir: Path
    backend: str
    gpus: list[int | str] = field(default_factory=list)
    image: str | None = None
    timeout_s: float | None = None
    env: dict[str, str] = field(default_factory=dict)
    #: host paths the harness must read (local model dirs, HF cache), mounted read-only
    read_only_paths: list[Path] = field(default_factory=list)
    quiet: bool = False


@dataclass
class RunOutcome:
    exit_code: int
    duration_s: float
    log_path: Path
    runtime: str
    image_ref: str | None = None
    image_digest: str | None = None
    timed_out: bool = False
    interrupted: bool = False


class RuntimeUnavailable(RuntimeError):
    """The runtime cannot work on this host; the message says how to fix it."""


class Runtime(ABC):
    name: str = "abstract"

    @classmethod
    @abstractmethod
    def available(cls) -> tuple[bool, str]:
        """(usable on this host?, reason when not). Cheap, never raises."""

    @abstractmethod
    def run(self, request: RunRequest) -> RunOutcome:
        """Execute the harness on ``request.run_dir`` and wait for it."""

    def cleanup(self) -> None:
        """Stop and remove whatever :meth:`run` started (called on Ctrl+C / timeout)."""
