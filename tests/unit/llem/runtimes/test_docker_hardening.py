"""Container hardening and failure handling of the docker runtime, through a stand-in Docker
client that records what the runtime asks of the daemon (the integration suite checks the
same things with `docker inspect` on a real daemon)."""

from __future__ import annotations

import os
import stat
import threading
import time
from pathlib import Path
from typing import Any

import pytest
from docker.errors import APIError, ImageNotFound

from llem.images.registry import EnsuredImage
from llem.runtimes import containers as ct
from llem.runtimes.base import RunRequest, RuntimeUnavailable
from llem.runtimes.docker import NVIDIA_HINT, DockerRuntime, stop_run_containers
from llem.study.rundir import write_spec
from llem_schema.config import ExperimentConfig
from llem_schema.runspec import RunSpec

IMG = EnsuredImage(ref="r:5000/llenergymeasure/pytorch:0.1.0-cpu", run_ref="sha256:" + "1" * 64,
                   digest="sha256:" + "d" * 64, image_id="sha256:" + "1" * 64)
TOKEN = "hf_unit_SECRET_token"
ROOT_ONLY = pytest.mark.skipif(os.getuid() != 0, reason="ownership hand-over needs root")


class FakeContainer:
    def __init__(self, client: FakeClient, kwargs: dict[str, Any]) -> None:
        self.client, self.kwargs = client, kwargs
        self.id = f"c{len(client.created)}"
        self.labels = dict(kwargs.get("labels") or {})
        self.attrs = {"Mounts": [{"Source": src, "Destination": v["bind"]}
                                 for src, v in (kwargs.get("volumes") or {}).items()]}
        self.stopped = threading.Event()

    def start(self) -> None:
        self.client.events.append(("start", self.id))
        if self.client.on_start is not None:
            self.client.on_start(self)
        if self.client.start_error is not None:
            raise self.client.start_error

    def wait(self, timeout: float) -> dict[str, int]:
        import requests

        if self.client.block and not self.stopped.wait(timeout):
            raise requests.exceptions.ReadTimeout("still running")
        return {"StatusCode": 143 if self.stopped.is_set() else self.client.exit_code}

    def logs(self, **_: object) -> list[bytes]:
        return [b"harness says hello\n"]

    def stop(self, timeout: float) -> None:
        self.client.events.append(("stop", self.id))
        self.stopped.set()

    def remove(self, force: bool = False) -> None:
        self.client.events.append(("remove", self.id))
        if self in self.client.live:
            self.client.live.remove(self)


class FakeContainers:
    def __init__(self, client: FakeClient) -> None:
        self.client = client

    def list(self, all: bool = False, filters: dict[str, str] | None = None,
             ignore_removed: bool = False) -> list[Any]:
        key, has_value, value = (filters or {}).get("label", "").partition("=")
        return [c for c in self.client.live
                if key in c.labels and (not has_value or c.labels[key] == value)]

    def create(self, **kwargs: Any) -> FakeContainer:
        self.client.events.append(("create", ""))
        if self.client.create_error is not None:
            raise self.client.create_error
        c = FakeContainer(self.client, kwargs)
        self.client.created.append(c)
        self.client.live.append(c)
        if self.client.on_create is not None:
            self.client.on_create(c)
        return c


class FakeClient:
    """What DockerRuntime.run uses of docker.DockerClient, with failures to order."""

    def __init__(self) -> None:
        self.containers = FakeContainers(self)
        self.events: list[tuple[str, str]] = []
        self.created: list[FakeContainer] = []
        self.live: list[FakeContainer] = []
        self.exit_code = 0
        self.create_error: BaseException | None = None
        self.start_error: BaseException | None = None
        self.on_create: Any = None
        self.on_start: Any = None
        #: containers run until stopped (wait() times out like the SDK's until then)
        self.block = False


def make_run(tmp_path: Path, shm: str = "64m") -> Path:
    cfg = ExperimentConfig.model_validate({"runtime": {"shm_size": shm}})
    run_dir = tmp_path / "study-1" / "e000-abc" / "cycle-0"
    write_spec(run_dir, RunSpec(experiment_id="e000-abc", run_id="study-1/e000-abc/cycle-0",
                                study_id="study-1", config=cfg, config_hash=cfg.config_hash(),
                                runtime="docker"))
    return run_dir


def runtime(client: Any = None, **kw: Any) -> DockerRuntime:
    return DockerRuntime(IMG, client=client or FakeClient(), hf_cache=None, **kw)


def test_container_is_hardened_labelled_and_gets_the_configured_shm(tmp_path: Path) -> None:
    run_dir = make_run(tmp_path, shm="64m")
    kw = runtime().container_kwargs(RunRequest(run_dir=run_dir, backend="pytorch"))
    assert kw["cap_drop"] == ["ALL"]
    assert kw["security_opt"] == ["no-new-privileges"]
    uid, gid = (int(x) for x in kw["user"].split(":"))
    assert uid != 0 and gid != 0
    assert kw["labels"] == {ct.LABEL_RUN_DIR: str(run_dir.resolve()),
                            ct.LABEL_RUN_ID: "study-1/e000-abc/cycle-0",
                            ct.LABEL_STUDY_ID: "study-1"}
    assert kw["shm_size"] == "64m"
    # a run directory without experiment.json (ad-hoc use): the runtime's own size
    bare = runtime(shm_size="2g").container_kwargs(RunRequest(tmp_path / "bare", "pytorch"))
    assert bare["shm_size"] == "2g" and bare["labels"][ct.LABEL_RUN_DIR].endswith("bare")
    ipc = runtime(ipc_host=True).container_kwargs(RunRequest(run_dir, "pytorch"))
    assert ipc["ipc_mode"] == "host" and "shm_size" not in ipc


def test_container_user_is_never_root(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(ct.os, "getuid", lambda: 0)
    monkeypatch.setattr(ct.os, "getgid", lambda: 0)
    assert ct.container_user() == ct.ContainerUser(65534, 65534)
    assert runtime().container_kwargs(RunRequest(Path("/tmp/x"), "pytorch"))["user"] == \
        "65534:65534"
    monkeypatch.setattr(ct.os, "getuid", lambda: 1000)
    monkeypatch.setattr(ct.os, "getgid", lambda: 100)
    assert ct.container_user().spec == "1000:100"
    assert ct.container_user("1234").spec == "1234:1234"
    for bad in ("0:0", "0", "llem"):
        with pytest.raises(ValueError):
            ct.container_user(bad)


def test_token_file_is_private_owned_by_the_container_user_and_removed() -> None:
    user = ct.ContainerUser(1234, 1234)
    with ct.token_file(TOKEN, user) as path:
        assert path is not None and path.read_text() == TOKEN
        assert stat.S_IMODE(path.stat().st_mode) == 0o600
        assert stat.S_IMODE(path.parent.stat().st_mode) == 0o700
        assert path.parent.name.startswith(ct.TOKEN_DIR_PREFIX)
        if os.getuid() == 0:  # root hands the file to the container's uid, nobody else
            assert (path.stat().st_uid, path.stat().st_gid) == (1234, 1234)
        else:
            assert path.stat().st_uid == os.getuid()
    assert not path.parent.exists()
    with ct.token_file(None, user) as none:
        assert none is None


def test_run_stops_a_stale_container_first_and_hides_the_token(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("HF_TOKEN", TOKEN)
    run_dir = make_run(tmp_path)
    client = FakeClient()
    rt = runtime(client)
    stale = FakeContainer(client, {"labels": ct.run_labels(run_dir)})
    other = FakeContainer(client, {"labels": {ct.LABEL_RUN_DIR: str(tmp_path / "other")}})
    client.live += [stale, other]
    seen: dict[str, Any] = {}

    def on_create(c: FakeContainer) -> None:
        (src,) = [s for s, v in c.kwargs["volumes"].items()
                  if v["bind"] == ct.CONTAINER_TOKEN_PATH]
        seen["token"] = Path(src)
        seen["content"] = Path(src).read_text()
        seen["mode"] = stat.S_IMODE(Path(src).stat().st_mode)

    client.on_create = on_create
    out = rt.run(RunRequest(run_dir=run_dir, backend="pytorch", quiet=True,
                            env={"HF_TOKEN": TOKEN}))
    assert out.exit_code == 0
    assert client.events[:3] == [("stop", stale.id), ("remove", stale.id), ("create", "")]
    assert other in client.live and not [c for c in client.created if c in client.live]
    (new,) = client.created
    assert TOKEN not in repr(new.kwargs)
    assert (seen["content"], seen["mode"]) == (TOKEN, 0o600)
    assert not seen["token"].exists() and not seen["token"].parent.exists()
    assert all(TOKEN not in p.read_text(errors="replace")
               for p in run_dir.iterdir() if p.is_file())


@ROOT_ONLY
def test_root_hands_the_run_dir_to_nobody_and_takes_the_files_back(tmp_path: Path) -> None:
    run_dir = make_run(tmp_path)
    (run_dir / "harness.log").write_text("an earlier attempt\n")  # root-owned
    client = FakeClient()
    owners: dict[str, int] = {}

    def on_start(c: FakeContainer) -> None:  # what the harness, as nobody, would do
        owners["dir"] = run_dir.stat().st_uid
        owners["old_log"] = (run_dir / "harness.log").stat().st_uid
        result = run_dir / "result.json"
        result.write_text("{}")
        os.chown(result, ct.UNPRIVILEGED_UID, ct.UNPRIVILEGED_GID)

    client.on_start = on_start
    runtime(client).run(RunRequest(run_dir=run_dir, backend="pytorch", quiet=True))
    assert owners == {"dir": ct.UNPRIVILEGED_UID, "old_log": ct.UNPRIVILEGED_UID}
    assert {p.name: p.stat().st_uid for p in [run_dir, *run_dir.iterdir()]} == \
        {p.name: 0 for p in [run_dir, *run_dir.iterdir()]}


@ROOT_ONLY
def test_take_back_leaves_an_explicit_users_files_and_never_follows_links(tmp_path: Path) -> None:
    d = tmp_path / "run"
    d.mkdir()
    (d / "mine.json").write_text("{}")
    os.chown(d / "mine.json", 1234, 1234)
    outside = tmp_path / "outside"
    outside.write_text("x")
    os.chown(outside, ct.UNPRIVILEGED_UID, ct.UNPRIVILEGED_GID)
    (d / "link").symlink_to(outside)
    ct.hand_over(d, ct.ContainerUser(ct.UNPRIVILEGED_UID, ct.UNPRIVILEGED_GID))
    assert (d / "mine.json").stat().st_uid == ct.UNPRIVILEGED_UID
    os.chown(d / "mine.json", 1234, 1234)
    ct.take_back(d)
    assert d.stat().st_uid == 0 and (d / "link").lstat().st_uid == 0
    assert (d / "mine.json").stat().st_uid == 1234
    assert outside.stat().st_uid == ct.UNPRIVILEGED_UID  # the link's target was not touched


def test_start_failure_leaves_no_created_container(tmp_path: Path,
                                                   monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("HF_TOKEN", TOKEN)
    client = FakeClient()
    client.start_error = APIError(
        "500", explanation='could not select device driver "nvidia" with capabilities: [[gpu]]')
    with pytest.raises(RuntimeUnavailable) as err:
        runtime(client).run(RunRequest(make_run(tmp_path), "pytorch", quiet=True))
    assert str(err.value) == NVIDIA_HINT
    (c,) = client.created
    assert client.events[-1] == ("remove", c.id) and not client.live
    token_src = next(m["Source"] for m in c.attrs["Mounts"]
                     if m["Destination"] == ct.CONTAINER_TOKEN_PATH)
    assert not Path(token_src).parent.exists()


def test_missing_image_at_create_is_one_line_with_the_fix(tmp_path: Path) -> None:
    client = FakeClient()
    client.create_error = ImageNotFound("No such image: sha256:111")
    with pytest.raises(RuntimeUnavailable, match="llem images pull"):
        runtime(client).run(RunRequest(make_run(tmp_path), "pytorch", quiet=True))
    assert not client.created and not client.live


def test_stop_run_containers_removes_only_llem_token_dirs(tmp_path: Path) -> None:
    run_dir = make_run(tmp_path)
    client = FakeClient()
    with ct.token_file(TOKEN, ct.container_user()) as ours:
        assert ours is not None
        keep = tmp_path / "keep"
        keep.mkdir()
        (keep / "hf_token").write_text("not ours")
        for src in (ours, keep / "hf_token"):
            c = FakeContainer(client, {"labels": ct.run_labels(run_dir), "volumes": {
                str(src): {"bind": ct.CONTAINER_TOKEN_PATH, "mode": "ro"}}})
            client.live.append(c)
        assert stop_run_containers(client, run_dir) == 2
        assert not client.live
        assert not ours.parent.exists() and (keep / "hf_token").exists()
    assert stop_run_containers(client, run_dir) == 0


def _poll(what: str, predicate: Any, timeout_s: float = 60) -> None:
    deadline = time.monotonic() + timeout_s
    while not predicate():
        assert time.monotonic() < deadline, f"timed out waiting for {what}"
        time.sleep(0.01)


def _token_dir(c: FakeContainer) -> Path:
    return Path(next(m["Source"] for m in c.attrs["Mounts"]
                     if m["Destination"] == ct.CONTAINER_TOKEN_PATH)).parent


@pytest.mark.timing
def test_cleanup_from_another_thread_is_an_interruption_and_waits_for_the_teardown(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A study's Ctrl+C / SIGTERM handler calls cleanup() on the main thread while the run
    is on a slot thread: the run ends interrupted (not failed), and cleanup() returns only
    once that run removed its token file and gave the run directory back (the launcher exits
    right after; the slot thread would die mid-teardown)."""
    monkeypatch.setenv("HF_TOKEN", TOKEN)
    run_dir = make_run(tmp_path)
    client = FakeClient()
    client.block = True
    rt = runtime(client)
    out: dict[str, Any] = {}
    worker = threading.Thread(target=lambda: out.update(o=rt.run(RunRequest(
        run_dir, "pytorch", quiet=True, env={"HF_TOKEN": TOKEN}))))
    worker.start()
    try:
        _poll("the container to start", lambda: ("start", "c0") in client.events)
        token_dir = _token_dir(client.created[0])
        assert token_dir.is_dir()
        rt.cleanup()
        assert not token_dir.exists(), "cleanup returned before the run's teardown"
    finally:
        client.block = False
        for c in client.created:
            c.stopped.set()
        worker.join(timeout=60)
    o = out["o"]
    assert (o.exit_code, o.interrupted, o.timed_out) == (130, True, False)
    assert not client.live
    assert "interrupted" in (run_dir / "harness.log").read_text()
    # reported once: the runtime's next run is an ordinary one
    assert rt.run(RunRequest(run_dir, "pytorch", quiet=True)).exit_code == 0


@pytest.mark.timing
def test_cleanup_while_the_container_is_being_created_leaves_none(tmp_path: Path) -> None:
    client = FakeClient()
    rt = runtime(client)
    client.on_create = lambda c: rt.cleanup()  # the signal lands mid-create
    out = rt.run(RunRequest(make_run(tmp_path), "pytorch", quiet=True))
    assert (out.exit_code, out.interrupted) == (130, True)
    (c,) = client.created
    assert ("start", c.id) not in client.events and not client.live


@pytest.mark.timing
def test_cleanup_between_runs_stops_the_next_one_before_it_starts(tmp_path: Path) -> None:
    client = FakeClient()
    rt = runtime(client)
    rt.cleanup()  # nothing running: the next run (already dispatched) does not start
    out = rt.run(RunRequest(make_run(tmp_path), "pytorch", quiet=True))
    assert out.interrupted and not client.created
    assert rt.run(RunRequest(make_run(tmp_path), "pytorch", quiet=True)).exit_code == 0


def test_study_containers_are_those_under_the_study_dir(tmp_path: Path) -> None:
    from llem.runtimes.docker import stop_study_containers

    run_dir = make_run(tmp_path)  # tmp/study-1/e000-abc/cycle-0
    client = FakeClient()
    mine = FakeContainer(client, {"labels": ct.run_labels(run_dir)})
    sibling = FakeContainer(client, {"labels": {
        ct.LABEL_RUN_DIR: str(tmp_path / "study-10" / "e000-abc" / "cycle-0")}})
    unlabelled = FakeContainer(client, {"labels": {"other": "x"}})
    client.live += [mine, sibling, unlabelled]
    assert stop_study_containers(client, tmp_path / "study-1") == 1
    assert client.live == [sibling, unlabelled]
