"""Set-up honesty (issue 17 item 7): `make demo` says, before pip runs, that torch==2.13.0
resolves to the CUDA build (several GB) without a local CPU wheel and how to get the CPU
build; TORCH_INDEX reaches pip; the README says the same."""

from __future__ import annotations

import shutil
import subprocess
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[2]


def _make_n(tmp_path: Path, *args: str) -> list[str]:
    if shutil.which("make") is None:
        pytest.skip("make not installed")
    p = subprocess.run(["make", "-n", "demo", f"VENV={tmp_path / 'venv'}", *args], cwd=REPO,
                       capture_output=True, text=True, timeout=30)
    assert p.returncode == 0, p.stderr
    return p.stdout.splitlines()


def test_make_demo_says_what_it_downloads_before_it_does(tmp_path: Path) -> None:
    lines = _make_n(tmp_path)
    torch_install = next(i for i, ln in enumerate(lines) if '"torch==' in ln)
    notice = "\n".join(lines[:torch_install])
    assert "CUDA build" in notice and "several GB" in notice
    assert "TORCH_INDEX=https://download.pytorch.org/whl/cpu" in notice
    assert "--index-url" not in lines[torch_install]


def test_torch_index_picks_the_cpu_build(tmp_path: Path) -> None:
    lines = _make_n(tmp_path, "TORCH_INDEX=https://download.pytorch.org/whl/cpu")
    (torch_install,) = [ln for ln in lines if '"torch==' in ln]
    assert torch_install.endswith("--index-url https://download.pytorch.org/whl/cpu")


def test_readme_states_the_cuda_download_and_the_cpu_build() -> None:
    text = " ".join((REPO / "README.md").read_text().split())
    assert "torch==2.13.0" in text and "CUDA build plus ~28 `nvidia-*` packages" in text
    assert "several GB" in text
    assert "make demo TORCH_INDEX=https://download.pytorch.org/whl/cpu" in text
