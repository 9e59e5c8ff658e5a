"""Launcher overhead of the Docker runtime, measured in one run on the cached image.

Prints, as medians over N runs of the same quick-test experiment:
  * container start -> harness ready: from `containers.run` to the harness's first log line
    (its logging is set up right after reading experiment.json, before the model loads);
  * run overhead: wall time of DockerRuntime.run minus LocalRuntime.run (target <= 2 s).

Usage: python benchmarks/launcher_overhead.py [--image REF] [--runs 3]
Needs a Docker daemon and the image present locally (no pull is timed).
"""

from __future__ import annotations

import argparse
import statistics
import tempfile
import threading
import time
from pathlib import Path

from llem.images.registry import docker_client, ensure_image
from llem.images.resolve import ResolvedImage, resolve_image
from llem.runtimes.base import RunRequest
from llem.runtimes.docker import DockerRuntime
from llem.runtimes.local import LocalRuntime
from llem.study.rundir import write_spec
from llem_schema.config import ExperimentConfig
from llem_schema.runspec import RunSpec

QUICK = {
    "workload": {"num_prompts": 4, "batch_size": 2},
    "decoding": {"max_new_tokens": 16},
    "measurement": {"baseline_seconds": 0, "warmup_min_runs": 1, "warmup_max_runs": 2,
                    "min_window_seconds": 0},
}


def _run_dir(root: Path, name: str, runtime: str) -> Path:
    cfg = ExperimentConfig.model_validate(QUICK)
    d = root / name
    write_spec(d, RunSpec(experiment_id=name, run_id=name, config=cfg,
                          config_hash=cfg.config_hash(), runtime=runtime))
    return d


class _ReadyProbe:
    """Stands in for the Docker client: times containers.run -> first byte of output."""

    def __init__(self, client) -> None:
        self.client, self.ready_s = client, None

    def __getattr__(self, name):
        return getattr(self.client, name)

    @property
    def containers(self):
        return self

    def run(self, **kw):
        t0 = time.monotonic()
        c = self.client.containers.run(**kw)

        def watch() -> None:
            for _ in c.logs(stream=True, follow=True):
                self.ready_s = time.monotonic() - t0
                return

        threading.Thread(target=watch, daemon=True).start()
        return c


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--image", default=None, help="default: what `llem run` would resolve")
    ap.add_argument("--registry", default=None)
    ap.add_argument("--runs", type=int, default=3)
    a = ap.parse_args()
    client = docker_client()
    res = (ResolvedImage("pytorch", a.image, "explicit") if a.image
           else resolve_image("pytorch", registry=a.registry))
    ens = ensure_image(client, res, "never")
    probe = _ReadyProbe(client)
    docker_rt = DockerRuntime(ens, probe)  # type: ignore[arg-type]
    local_rt = LocalRuntime()
    ready, dock, local = [], [], []
    with tempfile.TemporaryDirectory() as tmp:
        root = Path(tmp)
        for i in range(a.runs):
            t = time.monotonic()
            out = local_rt.run(RunRequest(_run_dir(root, f"l{i}", "local"), "pytorch", quiet=True))
            local.append(time.monotonic() - t)
            assert out.exit_code == 0, "local run failed"
            probe.ready_s = None
            t = time.monotonic()
            out = docker_rt.run(RunRequest(_run_dir(root, f"d{i}", "docker"), "pytorch",
                                           quiet=True))
            dock.append(time.monotonic() - t)
            assert out.exit_code == 0, "docker run failed"
            if probe.ready_s is not None:
                ready.append(probe.ready_s)
    med = statistics.median
    print(f"image: {ens.ref} ({(ens.digest or ens.image_id)[:19]})  runs: {a.runs}")
    print(f"container start -> harness ready: median {med(ready):.2f} s  "
          f"(min {min(ready):.2f}, max {max(ready):.2f})")
    print(f"run wall time: docker median {med(dock):.2f} s, local median {med(local):.2f} s")
    over = med(dock) - med(local)
    print(f"docker overhead vs local: {over:+.2f} s  (ratio {med(dock) / med(local):.2f}x)  "
          f"target <= 2 s: {'met' if over <= 2.0 else 'NOT met'}")


if __name__ == "__main__":
    main()
