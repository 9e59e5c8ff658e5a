"""``llem doctor``: is this host ready to run experiments in containers?

Each check prints one line; a failing one also prints the fix in one line. Checks that
depend on an earlier one (GPUs need the daemon) are skipped, not failed twice.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from typing import Any

import typer
from rich.console import Console

console = Console(soft_wrap=True)


@dataclass
class Check:
    name: str
    ok: bool | None  # None = skipped / informational
    detail: str
    fix: str = ""


def _runtime_check(info: dict[str, Any]) -> Check:
    runtimes = set((info.get("Runtimes") or {}).keys())
    cdi = [d for d in (info.get("CDISpecDirs") or [])]
    if "nvidia" in runtimes:
        return Check("NVIDIA container runtime", True, "nvidia runtime registered with dockerd")
    if cdi and any(os.path.exists(os.path.join(d, "nvidia.yaml")) for d in cdi):
        return Check("NVIDIA container runtime", True, "CDI spec for nvidia present")
    return Check(
        "NVIDIA container runtime", False, f"runtimes: {', '.join(sorted(runtimes)) or 'none'}",
        "install nvidia-container-toolkit, then `sudo nvidia-ctk runtime configure "
        "--runtime=docker && sudo systemctl restart docker`",
    )


def _gpu_check() -> tuple[Check, int]:
    try:
        import pynvml  # lazy: optional on the host
    except ImportError:
        pynvml = None
    if pynvml is not None:
        try:
            pynvml.nvmlInit()
            try:
                n = pynvml.nvmlDeviceGetCount()
                names = [pynvml.nvmlDeviceGetName(pynvml.nvmlDeviceGetHandleByIndex(i))
                         for i in range(n)]
                drv = pynvml.nvmlSystemGetDriverVersion()
            finally:
                pynvml.nvmlShutdown()
            names = [x.decode() if isinstance(x, bytes) else x for x in names]
            drv = drv.decode() if isinstance(drv, bytes) else drv
            return Check("GPUs", n > 0, f"{n} visible ({', '.join(names)}), driver {drv}"), n
        except Exception:
            pass
    return Check("GPUs", None, "none visible (CPU-only host: the -cpu image is used)",
                 ), 0


def run_checks(registry: str | None = None, backend: str = "pytorch",
               cuda: str | None = None) -> list[Check]:
    from llem.images.base import ImageError
    from llem.images.cuda import DriverCuda, detect_driver_cuda
    from llem.images.registry import daemon_problem, docker_client, local_image
    from llem.images.resolve import resolve_image

    checks: list[Check] = []
    client = None
    try:
        client = docker_client(timeout=10)
        v = client.version()
        checks.append(Check("Docker daemon", True,
                            f"reachable, server {v.get('Version')} (API {v.get('ApiVersion')})"))
    except ImageError as exc:  # not running / no permission / other: each has its own fix
        where, what, fix = daemon_problem(exc.__cause__ or exc)
        checks.append(Check("Docker daemon", False, f"{what} ({where})", fix))

    gpu, n_gpus = _gpu_check()
    driver: DriverCuda | None = None
    try:
        driver = detect_driver_cuda(cuda)
    except Exception as exc:
        checks.append(Check("Driver CUDA", False, str(exc), "pass --cuda like 12.4 or 'cpu'"))
    if client is not None:
        info = client.info()
        checks.append(_runtime_check(info) if (n_gpus or driver) else
                      Check("NVIDIA container runtime", None, "not needed on a CPU-only host"))
    checks.append(gpu)
    checks.append(Check("Driver CUDA", None if driver is None else True,
                        f"CUDA {driver} (from {driver.source})" if driver else "no NVIDIA driver"))

    resolved = None
    present = False
    try:
        resolved = resolve_image(backend, registry=registry, cuda=cuda)
        note = ""
        if client is not None:
            present = local_image(client, resolved.ref) is not None
            note = " (present locally)" if present else " (not pulled yet: `llem images pull`)"
        checks.append(Check("Chosen image", True, f"{resolved.ref}{note}"))
    except (ImageError, ValueError) as exc:
        checks.append(Check("Chosen image", False, str(exc), "pass --image REF or --cuda"))

    if client is not None and resolved is not None:
        checks.append(_registry_check(client, resolved.ref, present))
    return checks


def _registry_check(client: Any, ref: str, present: bool = False) -> Check:
    """Ask the registry for the manifest (HEAD-like, no layers): reachable + authorised.

    A registry that fails while the chosen image is present locally is not a failure: runs
    use the local image (``--pull missing``); the line says what is wrong, for pulls."""
    from llem.images.registry import is_auth_error, registry_host

    host = registry_host(ref)
    try:
        data = client.api.inspect_distribution(ref)
        digest = (data.get("Descriptor") or {}).get("digest", "?")
        return Check("Registry", True, f"{host}: reachable and authorised ({digest[:19]})")
    except Exception as exc:  # APIError from the daemon, or no answer from it in time
        msg = " ".join(str(getattr(exc, "explanation", None) or exc).split())
        low = msg.lower()
        if is_auth_error(msg):
            what, fix = "credentials refused", (
                f"`docker login {host}` (llem uses Docker's stored credentials)")
        elif "manifest unknown" in low or "not found" in low:
            what, fix = "image not there", (
                "the image is not in that registry: check --registry, or push/mirror it there")
        else:
            what, fix = "unreachable", (
                f"check network access to {host}, or use --registry / `llem images load`")
        if present:
            return Check("Registry", None, f"{host}: {what}, but the chosen image is present "
                         f"locally, so runs can use it (for pulls: {fix}; {msg[:120]})")
        return Check("Registry", False, f"{host}: {what} ({msg[:160]})", fix)


def doctor(
    registry: str | None = typer.Option(None, help="Registry prefix (else LLEM_REGISTRY/config)."),
    backend: str = typer.Option("pytorch", help="Backend whose image to check."),
    cuda: str | None = typer.Option(None, help="CUDA version to assume, or 'cpu'."),
) -> None:
    """Check Docker, NVIDIA runtime, GPUs, driver/CUDA, the chosen image and the registry."""
    from llem.images.refs import resolve_registry

    checks = run_checks(resolve_registry(registry), backend, cuda)
    failed = 0
    for c in checks:
        mark = {True: "[green]ok[/green]  ", False: "[red]FAIL[/red]",
                None: "[dim]--[/dim]  "}[c.ok]
        console.print(f"{mark} {c.name}: {c.detail}", highlight=False)
        if c.ok is False:
            failed += 1
            if c.fix:
                console.print(f"       fix: {c.fix}", highlight=False)
    if failed:
        raise typer.Exit(1)
