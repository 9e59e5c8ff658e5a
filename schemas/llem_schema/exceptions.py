"""Exceptions shared by host and harness, importable without pydantic (fast CLI start)."""


class ConfigError(ValueError):
    """A config problem worth exactly one line to the user (exit code 2)."""
