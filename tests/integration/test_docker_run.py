"""`llem run --runtime docker` against a real dockerd and the CPU test image.

Other suites use the same daemon at the same time: every container check here is scoped to
the test's own results directory (the run-directory label of llem's containers), and every
test that starts a launcher removes what it left, even when it fails.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import threading
import time
import uuid
from pathlib import Path

import pytest
from llem_it import (
    LAUNCH,
    assert_one_run_left_clean,
    base_env,
    find_result,
    llem,
    load_result,
    own_containers,
    wait_until,
)

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
    assert not own_containers(client, tmp_path)


def _tiny_run(tmp_path: Path, it_env, client, **runtime_kw):
    """A run directory holding a tiny experiment (2 prompts, 4 new tokens, no baseline) and
    a DockerRuntime on the test image: ``(runtime, its RunRequest, the run directory)``."""
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
    write_spec(run_dir, RunSpec(experiment_id="e", run_id="r", config=cfg,
                                config_hash=cfg.config_hash(), runtime="docker"))
    ens = ensure_image(client, ResolvedImage("pytorch", it_env["LLEM_IT_IMAGE"], "explicit"),
                       "never")
    rt = DockerRuntime(ens, client, **runtime_kw)
    return rt, RunRequest(run_dir=run_dir, backend="pytorch", quiet=True), run_dir


def test_result_files_belong_to_the_user_passed(tmp_path, it_env, client):
    """Run as root, container as uid 1234: every file the harness writes is owned by 1234."""
    rt, request, run_dir = _tiny_run(tmp_path, it_env, client, user="1234:1234")
    for p in [run_dir, *run_dir.iterdir()]:
        os.chown(p, 1234, 1234)
    out = rt.run(request)
    assert out.exit_code == 0, (run_dir / "harness.log").read_text()
    for name in ("result.json", "harness.log"):
        assert (run_dir / name).stat().st_uid == 1234, name
    assert json.loads((run_dir / "result.json").read_text())["environment"]["image_ref"]


def test_harness_crash_exits_with_its_mapped_message(tmp_path, it_env, client):
    from llem_schema.exit_codes import ExitCode, describe

    cfg = tmp_path / "exp.yaml"
    # a real generate() argument with a value only transformers refuses, inside the
    # container (the launcher's pre-flight checks extra: names, not their values)
    cfg.write_text("model: builtin:tiny-llama\nextra: {bad_words_ids: not-a-list}\n"
                   "study: {max_retries: 0}\n")
    r = llem("run", str(cfg), "--preset", "quick-test", "--runtime", "docker",
             "--registry", it_env["LLEM_IT_OPEN_REGISTRY"], "--results-dir", str(tmp_path / "r"))
    assert r.returncode != 0
    out = r.stdout + r.stderr
    assert describe(ExitCode.BACKEND_FAILURE) in " ".join(out.split()), out
    assert "Traceback" not in out
    assert not own_containers(client, tmp_path)


@pytest.mark.timing
@pytest.mark.parametrize("sig", [signal.SIGINT, signal.SIGTERM], ids=["SIGINT", "SIGTERM"])
def test_signal_mid_run_leaves_no_container(tmp_path, it_env, client, launched, sig):
    """Ctrl+C or SIGTERM (kill, a stopping CI job) while the container runs: exit 130, the
    container stopped and removed, the run marked interrupted (no attempt counted), its token
    directory gone and (as root) its files given back."""
    token = f"hf_it_signal_SECRET_{uuid.uuid4().hex}"
    results = tmp_path / "r"
    proc = subprocess.Popen(
        [sys.executable, "-c", LAUNCH, "run", "--runtime", "docker", "--registry",
         it_env["LLEM_IT_OPEN_REGISTRY"], "--num-prompts", "4000", "--max-new-tokens", "64",
         "--baseline-seconds", "0", "--results-dir", str(results)],
        env=base_env(HF_TOKEN=token), stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
        text=True,
    )
    launched.append(proc)

    def running() -> list:
        assert proc.poll() is None, proc.stdout.read()
        return [c for c in own_containers(client, tmp_path) if c.status == "running"]

    (container,) = wait_until("the container to start", running, timeout_s=300)
    token_dir = Path(next(m["Source"] for m in container.attrs["Mounts"]
                          if m["Destination"] == "/run/secrets/llem_hf_token")).parent
    assert token_dir.is_dir()
    proc.send_signal(sig)
    out, _ = proc.communicate(timeout=300)
    assert proc.returncode == 130, out
    assert "interrupted" in out and "Traceback" not in out
    assert token not in out
    assert not own_containers(client, tmp_path)
    assert not token_dir.exists(), "token dir left after the run"
    assert_one_run_left_clean(results, token, "interrupted", 0)


def test_missing_daemon_gives_one_line_hint(tmp_path):
    env = base_env(DOCKER_HOST=f"unix://{tmp_path}/dead.sock")
    r = llem(*QUICK, "--runtime", "docker", "--results-dir", str(tmp_path / "r"), env=env)
    assert r.returncode != 0
    lines = [ln for ln in (r.stdout + r.stderr).splitlines() if "Docker daemon" in ln]
    assert lines and "dead.sock" in lines[0] and "--runtime local" in lines[0], r.stderr
    assert "Traceback" not in r.stderr


class LabelWatch(threading.Thread):
    """Polls, on its own client, which of llem's containers exist under ``root``; the
    record shows whether two were ever there at once and in which order they came."""

    def __init__(self, root: Path) -> None:
        super().__init__(daemon=True)
        import docker

        self.client = docker.from_env(timeout=120)
        self.root = root
        self.seen: list[tuple[float, tuple[str, ...]]] = []
        self.done = threading.Event()

    def run(self) -> None:
        while not self.done.is_set():
            ids = tuple(sorted(c.id for c in own_containers(self.client, self.root)))
            self.seen.append((time.monotonic(), ids))
            self.done.wait(0.1)

    def stop(self) -> None:
        self.done.set()
        self.join(timeout=120)
        self.client.close()

    def first(self, cid: str) -> float:
        return min(t for t, ids in self.seen if cid in ids)

    def last(self, cid: str) -> float:
        return max(t for t, ids in self.seen if cid in ids)


@pytest.mark.timing
def test_resume_after_sigkill_stops_the_orphaned_container_first(tmp_path, it_env, client,
                                                                  launched):
    """A SIGKILLed launcher leaves its container running; `--resume` finds it by its run
    label and removes it (and its token file) before it starts the run's next container:
    never two containers on one run directory."""
    token = f"hf_it_resume_SECRET_{uuid.uuid4().hex}"
    results = tmp_path / "r"
    argv = [sys.executable, "-c", LAUNCH, "run", "--runtime", "docker",
            "--registry", it_env["LLEM_IT_OPEN_REGISTRY"], "--num-prompts", "4000",
            "--max-new-tokens", "64", "--baseline-seconds", "0", "--results-dir", str(results)]
    env = base_env(HF_TOKEN=token)
    watch = LabelWatch(tmp_path)
    watch.start()
    try:
        first = subprocess.Popen(argv, env=env, stdout=subprocess.DEVNULL,
                                 stderr=subprocess.DEVNULL)
        launched.append(first)

        def running(exclude: str = "") -> list:
            return [c for c in own_containers(client, tmp_path)
                    if c.status == "running" and c.id != exclude]

        (old,) = wait_until("the first container", running)
        token_src = next(m["Source"] for m in old.attrs["Mounts"]
                         if m["Destination"] == "/run/secrets/llem_hf_token")
        first.send_signal(signal.SIGKILL)
        first.wait(timeout=60)
        old.reload()
        assert old.status == "running", "the orphan must outlive its launcher"
        (study_dir,) = [d for d in results.iterdir() if d.is_dir()]
        state = json.loads(next(study_dir.rglob("state.json")).read_text())
        assert state["state"] == "running"

        resumed = subprocess.Popen([*argv, "--resume"], env=env, stdout=subprocess.PIPE,
                                   stderr=subprocess.STDOUT, text=True)
        launched.append(resumed)
        (new,) = wait_until("the resumed run's container", lambda: running(exclude=old.id))
        assert old.id not in [c.id for c in own_containers(client, tmp_path)]
        assert not Path(token_src).parent.exists(), "the orphan's token dir was left"
        resumed.send_signal(signal.SIGINT)
        out, _ = resumed.communicate(timeout=180)
        assert resumed.returncode == 130, out
        assert token not in out
    finally:
        watch.stop()
    assert watch.seen and all(len(ids) <= 1 for _, ids in watch.seen), watch.seen
    assert watch.last(old.id) < watch.first(new.id)
    assert not own_containers(client, tmp_path)
    for f in results.rglob("*"):
        if f.is_file():
            assert token.encode() not in f.read_bytes(), f


def _assert_nothing_left(client, tmp_path: Path, results: Path) -> None:
    assert not results.exists() or not any(results.iterdir()), list(results.rglob("*"))
    assert not own_containers(client, tmp_path), "a container was left (Created?)"


def test_missing_image_leaves_no_study_dir_and_no_container(tmp_path, it_env, client):
    ref = f"{it_env['LLEM_IT_OPEN_REGISTRY']}/llem-test/no-such-{uuid.uuid4().hex[:8]}:1"
    r = llem(*QUICK, "--runtime", "docker", "--image", ref, "--results-dir",
             str(tmp_path / "r"))
    assert r.returncode == 2, r.stdout + r.stderr
    errors = [ln for ln in r.stderr.splitlines() if ln.startswith("error:")]
    assert len(errors) == 1 and ref in errors[0], r.stderr
    assert "Traceback" not in r.stderr
    _assert_nothing_left(client, tmp_path, tmp_path / "r")


def test_daemon_refusing_the_container_leaves_nothing_behind(tmp_path, it_env, client):
    """The daemon rejects the container (a network that does not exist): one line, no study
    directory, no run marked running, and no container left in the Created state."""
    net = f"llem-it-no-such-net-{uuid.uuid4().hex[:8]}"
    r = llem(*QUICK, "--runtime", "docker", "--registry", it_env["LLEM_IT_OPEN_REGISTRY"],
             "--results-dir", str(tmp_path / "r"), env=base_env(LLEM_DOCKER_NETWORK=net))
    assert r.returncode == 2, r.stdout + r.stderr
    errors = [ln for ln in r.stderr.splitlines() if ln.startswith("error:")]
    assert len(errors) == 1 and "docker could not start the container" in errors[0], r.stderr
    assert net in errors[0]
    _assert_nothing_left(client, tmp_path, tmp_path / "r")


@pytest.mark.timing
def test_orphan_that_finished_while_its_launcher_was_dead_counts(tmp_path, it_env, client,
                                                                 launched):
    """SIGKILL the launcher, let its container finish on its own, then `--resume`: the
    container's result counts (the run is not repeated: no second container ever exists),
    the exited container and its token directory are removed, and the files are given back."""
    token = f"hf_it_orphan_SECRET_{uuid.uuid4().hex}"
    results = tmp_path / "r"
    argv = [sys.executable, "-c", LAUNCH, *QUICK, "--runtime", "docker",
            "--registry", it_env["LLEM_IT_OPEN_REGISTRY"], "--results-dir", str(results)]
    env = base_env(HF_TOKEN=token)
    watch = LabelWatch(tmp_path)
    watch.start()
    try:
        first = subprocess.Popen(argv, env=env, stdout=subprocess.DEVNULL,
                                 stderr=subprocess.DEVNULL)
        launched.append(first)
        # running, not merely listed: a launcher killed between create and start leaves a
        # container in the Created state that never runs (resume removes it and runs again:
        # test_a_created_only_orphan_is_removed_before_the_run_starts)
        (old,) = wait_until("the first container to run", lambda: [
            c for c in own_containers(client, tmp_path) if c.status in ("running", "exited")])
        first.send_signal(signal.SIGKILL)
        first.wait(timeout=60)
        token_src = next(m["Source"] for m in client.containers.get(old.id).attrs["Mounts"]
                         if m["Destination"] == "/run/secrets/llem_hf_token")

        def exited() -> bool:
            old.reload()
            return old.status == "exited"

        try:
            wait_until("the orphan to finish on its own", exited, timeout_s=600)
        except AssertionError as exc:
            raise AssertionError(f"{exc} (its state: {old.attrs['State']})") from None
        assert old.attrs["State"]["ExitCode"] == 0, old.logs()[-2000:]
        resumed = llem(*argv[3:], "--resume", env=env)
        assert resumed.returncode == 0, resumed.stdout[-3000:] + resumed.stderr[-3000:]
        assert token not in resumed.stdout + resumed.stderr
    finally:
        watch.stop()
    assert {cid for _, ids in watch.seen for cid in ids} == {old.id}, "the run was repeated"
    assert not own_containers(client, tmp_path)
    assert not Path(token_src).parent.exists(), "the orphan's token dir was left"
    assert_one_run_left_clean(results, token, "done", 1)


def test_a_created_only_orphan_is_removed_before_the_run_starts(tmp_path, it_env, client):
    """A launcher killed between `create` and `start` leaves a container that never runs,
    in the Created state, labelled with the run directory. The next run on that directory
    removes it first and then runs its own: one container ran, none is left."""
    rt, request, run_dir = _tiny_run(tmp_path, it_env, client)
    stale = client.containers.create(**rt.container_kwargs(request))
    try:
        assert [c.id for c in own_containers(client, tmp_path)] == [stale.id]
        assert stale.status == "created"
        out = rt.run(request)
        assert out.exit_code == 0, (run_dir / "harness.log").read_text()
        assert json.loads((run_dir / "result.json").read_text())["environment"]["image_ref"]
        assert stale.id not in [c.id for c in own_containers(client, tmp_path)]
        assert not own_containers(client, tmp_path)
    finally:
        for c in own_containers(client, tmp_path):
            c.remove(force=True)
