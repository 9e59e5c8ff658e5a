"""The one way llem builds a Typer command group, so every group behaves alike."""

from __future__ import annotations

from typing import Any

import typer


def command_group(help: str, **options: Any) -> typer.Typer:
    """A command group that shows its help when called bare.

    Plain click help (``rich_markup_mode=None``): typer's rich help imports rich.markdown,
    pygments and rich.traceback, +0.1 s on every ``--help`` -- a third of the 0.3 s budget
    of ``llem --help``. Rich stays for tables and progress bars, which are worth it.
    """
    return typer.Typer(help=help, no_args_is_help=True, add_completion=False,
                       rich_markup_mode=None, pretty_exceptions_enable=False, **options)


class UserError(Exception):
    """A one-line problem the user can fix; exit code 2."""


def overrides(**kw: object) -> dict[str, object]:
    """CLI flags -> dotted config paths (the CLI layer of the precedence rules)."""
    mapping = {
        "backend": "backend",
        "model": "model",
        "batch_size": "workload.batch_size",
        "num_prompts": "workload.num_prompts",
        "max_new_tokens": "decoding.max_new_tokens",
        "runtime": "runtime.runtime",
        "energy_backend": "measurement.energy_backend",
        "baseline_seconds": "measurement.baseline_seconds",
        "image": "runtime.image",
        "registry": "runtime.registry",
        "pull": "runtime.pull_policy",
        "cycles": "study.cycles",
        "order": "study.order",
        "dataset": "workload.dataset",
        "seed": "decoding.seed",
        "temperature": "decoding.temperature",
        "timeout": "runtime.timeout_seconds",
        # the chosen backend's section (known once the file and --backend are read)
        "dtype": "@backend.dtype",
        "quantization": "@backend.quantization",
    }
    out = {mapping[k]: v for k, v in kw.items() if v is not None and k in mapping}
    if kw.get("fail_fast"):
        out["study.max_failures"] = 1
    if kw.get("seed") is not None:  # one seed for the decoding and the prompt sampling
        out["workload.seed"] = kw["seed"]
    gpus = kw.get("gpus")
    if gpus:
        out["runtime.gpus"] = [int(g) if str(g).isdigit() else g for g in str(gpus).split(",")]
    return out
