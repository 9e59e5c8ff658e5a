"""`llem run --runtime docker` against a real dockerd and the CPU test image."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time

from llem_it import base_env, find_result, llem, load_result

QUICK = ["run", "--preset", "quick-test"]


def _keys(obj, prefix=""):
    """Every dotted key path of a JSON document (values ignored)."""
    out = set()
    if isinstance(obj, dict):
        for k, v in obj.items():
            out.add(prefix + k)
            out |= _keys(v, prefix + k + ".")
    return out


def test_quickstart_docker_matches_local_and_records_digest(tmp_path, it_env, client):
    local = llem(*QUICK, "--runtime", "local", "--results-dir", str(tmp_path / "local"))
    assert local.returncode == 0, local.stdout + local.stderr
    dock = llem(*QUICK, "--runtime", "docker", "--registry", it_env["LLEM_IT_OPEN_REGISTRY"],
                "--results-dir", str(tmp_path / "docker"))
    assert dock.returncode == 0, dock.stdout + dock.stderr
    rl, rd = load_result(tmp_path / "local"), load_result(tmp_path / "docker")
    # environment differs by design (image fields, runtime); every measured field matches
    skip = ("environment.", "setup.", "warmup.")
    assert {k for k in _keys(rl) if not k.startswith(skip)} == \
        {k for k in _keys(rd) if not k.startswith(skip)}
    assert rd["throughput"]["output_tokens"] == rl["throughput"]["output_tokens"]
    env = rd["environment"]
    assert env["image_ref"] == it_env["LLEM_IT_IMAGE"]
    repo = it_env["LLEM_IT_IMAGE"].rsplit(":", 1)[0]
    img = client.images.get(it_env["LLEM_IT_IMAGE"])
    assert f"{repo}@{env['image_digest']}" in img.attrs["RepoDigests"]
    assert rl["environment"]["image_digest"] is None
    result_file = find_result(tmp_path / "docker")
    assert result_file.stat().st_uid == os.getuid()
    assert not client.containers.list(all=True, filters={"label": "io.llenergymeasure.run_dir"})


def test_result_files_belong_to_the_user_passed(tmp_path, it_env, client):
    """Run as root, container as uid 1234: every file the harness writes is owned by 1234."""
    from llem.images.registry import ensure_image
    from llem.images.resolve import ResolvedImage
    from llem.runtimes.base import RunRequest
    from llem.runtimes.docker import DockerRuntime
    from llem.study.rundir import write_spec
    from llem_schema.config import ExperimentConfig
    from llem_schema.runspec import RunSpec

    cfg = ExperimentConfig.model_validate({
        "workload": {"num_prompts": 2, "batch_size": 2}, "decoding": {"max_new_tokens": 4},
        "measurement": {"baseline_seconds": 0, "warmup_min_runs": 0, "warmup_max_runs": 1,
                        "min_window_seconds": 0},
    })
    run_dir = tmp_path / "run"
    spec = RunSpec(experiment_id="e", run_id="r", config=cfg, config_hash=cfg.config_hash(),
                   runtime="docker")
    write_spec(run_dir, spec)
    for p in [run_dir, *run_dir.iterdir()]:
        os.chown(p, 1234, 1234)
    ens = ensure_image(client, ResolvedImage("pytorch", it_env["LLEM_IT_IMAGE"], "explicit"),
                       "never")
    rt = DockerRuntime(ens, client, user="1234:1234")
    out = rt.run(RunRequest(run_dir=run_dir, backend="pytorch", quiet=True))
    assert out.exit_code == 0, (run_dir / "harness.log").read_text()
    for name in ("result.json", "harness.log"):
        assert (run_dir / name).stat().st_uid == 1234, name
    assert json.loads((run_dir / "result.json").read_text())["environment"]["image_ref"]


def test_harness_crash_exits_with_its_mapped_message(tmp_path, it_env, client):
    from llem_schema.exit_codes import ExitCode, describe

    cfg = tmp_path / "exp.yaml"
    cfg.write_text("model: builtin:tiny-llama\nextra: {no_such_generate_kwarg: 1}\n")
    r = llem("run", str(cfg), "--preset", "quick-test", "--runtime", "docker",
             "--registry", it_env["LLEM_IT_OPEN_REGISTRY"], "--results-dir", str(tmp_path / "r"))
    assert r.returncode != 0
    out = r.stdout + r.stderr
    assert describe(ExitCode.BACKEND_FAILURE) in " ".join(out.split()), out
    assert "Traceback" not in out
    assert not client.containers.list(all=True, filters={"label": "io.llenergymeasure.run_dir"})


def test_sigint_mid_run_leaves_no_container(tmp_path, it_env, client):
    code = "import sys; from llem.cli import main; sys.argv[0] = 'llem'; main()"
    env = base_env()
    proc = subprocess.Popen(
        [sys.executable, "-c", code, "run", "--runtime", "docker", "--registry",
         it_env["LLEM_IT_OPEN_REGISTRY"], "--num-prompts", "4000", "--max-new-tokens", "64",
         "--baseline-seconds", "0", "--results-dir", str(tmp_path / "r")],
        env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
    )
    label = {"label": "io.llenergymeasure.run_dir"}
    deadline = time.monotonic() + 120
    while time.monotonic() < deadline and not client.containers.list(filters=label):
        assert proc.poll() is None, proc.stdout.read()
        time.sleep(0.2)
    assert client.containers.list(filters=label), "container never started"
    time.sleep(2)
    proc.send_signal(signal.SIGINT)
    out, _ = proc.communicate(timeout=60)
    assert proc.returncode == 130, out
    assert "interrupted" in out
    assert not client.containers.list(all=True, filters=label)


def test_missing_daemon_gives_one_line_hint(tmp_path):
    env = base_env(DOCKER_HOST=f"unix://{tmp_path}/dead.sock")
    r = llem(*QUICK, "--runtime", "docker", "--results-dir", str(tmp_path / "r"), env=env)
    assert r.returncode != 0
    lines = [ln for ln in (r.stdout + r.stderr).splitlines() if "Docker daemon" in ln]
    assert lines and "dead.sock" in lines[0] and "--runtime local" in lines[0], r.stderr
    assert "Traceback" not in r.stderr
