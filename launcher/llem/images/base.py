"""Names every part of image handling shares: the error, pull policies, the CPU variant."""

from __future__ import annotations

from typing import Literal

PullPolicy = Literal["missing", "always", "never"]
PULL_POLICIES: tuple[str, ...] = ("missing", "always", "never")
LOCK_FILE = "llem.lock"
CPU = "cpu"


class ImageError(RuntimeError):
    """An image could not be chosen, found or fetched; the message is one line with the fix."""
