"""What differs between the environment a result was measured in and another one.

Two results of one configuration are comparable only as far as their environments agree: a
different GPU, power limit, driver or torch explains a difference before any statistics do.
Environments are flattened to dotted keys (``gpus[0].power_limit_w``, ``packages.torch``)
so a difference names the exact field of ``result.json`` it comes from.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from llem_schema.config import ExperimentConfig
from llem_schema.result import EnvironmentInfo

Flat = dict[str, Any]


@dataclass(frozen=True)
class Difference:
    key: str
    original: Any
    now: Any

    def line(self) -> str:
        return f"{self.key}: {_show(self.original)} -> {_show(self.now)}"


@dataclass(frozen=True)
class EnvComparison:
    """The keys compared, those that differ, and what could not be known (and why)."""

    compared: list[str]
    differences: list[Difference]
    unknown: list[str]

    @property
    def same(self) -> bool:
        return not self.differences


def flatten_env(env: EnvironmentInfo) -> Flat:
    """Every leaf of the environment block under its dotted path; lists indexed ``[i]``."""
    out: Flat = {}

    def walk(node: Any, prefix: str) -> None:
        if isinstance(node, dict):
            for k, v in node.items():
                walk(v, f"{prefix}.{k}" if prefix else str(k))
        elif isinstance(node, list) and node and all(isinstance(x, dict) for x in node):
            for i, v in enumerate(node):
                walk(v, f"{prefix}[{i}]")
        else:
            out[prefix] = node

    walk(env.model_dump(mode="json"), "")
    return out


def compare(original: Flat, now: Flat, keys: list[str] | None = None,
            unknown: list[str] | None = None) -> EnvComparison:
    """Differences over ``keys`` (default: every key either side has); a key one side lacks
    counts as ``None`` there, so a package that disappeared or a GPU that is gone shows up."""
    keys = keys if keys is not None else sorted(set(original) | set(now), key=_order)
    diffs = [Difference(k, original.get(k), now.get(k)) for k in keys
             if original.get(k) != now.get(k)]
    return EnvComparison(compared=keys, differences=diffs, unknown=unknown or [])


def before_run(original: EnvironmentInfo, config: ExperimentConfig, runtime: str,
               image_digest: str | None) -> EnvComparison:
    """The original's environment against what this host can know before the run.

    ``runtime`` is the one the rerun will use and ``image_digest`` the digest it will run
    (None: no image). Packages, Python and the CUDA runtime are compared only when the
    harness runs in this Python environment (local); in a container they are the image's.
    """
    from llem.study import hostenv

    orig = flatten_env(original)
    n_gpus = max(len(original.gpus), 1)
    selection = list(config.runtime.gpus) or list(range(n_gpus))
    now: Flat = hostenv.machine() | hostenv.gpus(selection)
    now |= {"runtime": runtime, "image_digest": image_digest}
    unknown = ["GPU clocks and temperature at the start (they vary run to run)"]
    if runtime == "local":
        names = sorted(original.packages)
        now |= hostenv.python_side(names)
        if original.runtime == "local":
            import socket

            now["host.hostname"] = socket.gethostname()
    else:
        unknown.append(f"packages, Python and the CUDA runtime: inside the image ({runtime}), "
                       "fixed by its digest")
    for key in orig:  # fewer GPUs here: each field the host could have read differs
        if key.startswith("gpus[") and key.split("].", 1)[-1] in hostenv.GPU_FIELDS:
            now.setdefault(key, None)
    keys = sorted((k for k in now if k in orig or k.startswith(("gpus[", "packages."))),
                  key=_order)
    return compare(orig, now, keys, unknown)


def seeds(config: ExperimentConfig) -> dict[str, Any]:
    """Every ``*seed`` setting of the config (decoding, prompt sampling, traffic, the chosen
    engine's section; the other engines' sections are not used)."""
    from llem_schema.config import BACKENDS

    out: dict[str, Any] = {}
    unused = tuple(f"{b}." for b in BACKENDS if b != config.backend)

    def walk(node: Any, prefix: str) -> None:
        if isinstance(node, dict):
            for k, v in node.items():
                walk(v, f"{prefix}.{k}" if prefix else k)
        elif prefix.rsplit(".", 1)[-1].endswith("seed") and not prefix.startswith(unused):
            out[prefix] = node

    walk(config.model_dump(mode="json"), "")
    return out


def _order(key: str) -> tuple[int, str]:
    """GPUs, driver and CUDA first (what most often explains a difference), packages last."""
    rank = 0 if key.startswith(("device", "gpus[")) else \
        1 if key.startswith(("driver", "cuda")) else \
        3 if key.startswith("packages.") else 2
    return rank, key


def _show(v: Any) -> str:
    return "(none)" if v is None else str(v)
