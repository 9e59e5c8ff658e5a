"""Runtimes: how one experiment executes (local subprocess, docker container, ...)."""

from __future__ import annotations

from llem.runtimes.base import RunOutcome, RunRequest, Runtime, RuntimeUnavailable

RUNTIME_NAMES = ("auto", "local", "docker", "podman")

__all__ = ["RUNTIME_NAMES", "RunOutcome", "RunRequest", "Runtime", "RuntimeUnavailable"]
