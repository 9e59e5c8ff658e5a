"""What every container llem starts has in common, whichever engine (docker, podman) runs it.

* **Labels.** Each container carries its run directory, run id and study id. The run
  directory label is how orphan recovery and the runtimes themselves find a container left
  by a killed launcher, so two containers never work on one run directory.
* **An unprivileged user.** A container never runs as root, even when llem does: a root
  launcher runs it as ``nobody`` (65534:65534), hands the run directory to that uid so the
  harness can write there, and takes the files back afterwards so they belong to whoever
  started llem. A non-root launcher runs it as itself (the files are then its own).
* **The HF token as a file.** ``HF_TOKEN`` in a container's environment shows in
  ``docker inspect`` (and ``podman inspect``) for as long as the container exists. It is
  written instead to a 0600 file in a private directory (tmpfs when ``/dev/shm`` is
  usable), owned by the container's uid, mounted read-only, and named by
  ``HF_TOKEN_PATH`` (huggingface_hub reads it there); the directory is removed after the run.
"""

from __future__ import annotations

import contextlib
import os
import shutil
import stat
import tempfile
import threading
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from pathlib import Path

from llem_schema.runspec import EXPERIMENT_FILE, RunSpec

LABEL_RUN_DIR = "io.llenergymeasure.run_dir"
LABEL_RUN_ID = "io.llenergymeasure.run_id"
LABEL_STUDY_ID = "io.llenergymeasure.study_id"

#: nobody:nogroup, the uid:gid a root launcher gives its containers
UNPRIVILEGED_UID = UNPRIVILEGED_GID = 65534

#: where the token file appears in the container (outside the run-dir mount, so no mount
#: point is ever created in the results)
CONTAINER_TOKEN_PATH = "/run/secrets/llem_hf_token"
#: the environment variables that may hold an HF token; never handed to a container
TOKEN_VARS = ("HF_TOKEN", "HUGGING_FACE_HUB_TOKEN")
#: prefix of the private token directories (orphan recovery removes only these); the
#: launcher's pid follows it, so one left by a killed launcher is recognised as stale
TOKEN_DIR_PREFIX = "llem-secret-"

#: ``--shm-size`` when a run directory has no experiment.json (ad-hoc calls, tests)
DEFAULT_SHM_SIZE = "8g"


@dataclass(frozen=True)
class ContainerUser:
    """The uid:gid a container runs as."""

    uid: int
    gid: int

    @property
    def spec(self) -> str:
        return f"{self.uid}:{self.gid}"


def container_user(explicit: str | None = None) -> ContainerUser:
    """``explicit`` ("uid:gid" or "uid"), else this process's uid:gid, else (root) nobody.

    Numeric only: the run directory is chowned to it when llem runs as root, and a name
    would have to be looked up in the image, not on the host. Root is refused.
    """
    if explicit is None:
        if os.getuid() != 0:
            return ContainerUser(os.getuid(), os.getgid())
        return ContainerUser(UNPRIVILEGED_UID, UNPRIVILEGED_GID)
    uid_s, _, gid_s = explicit.partition(":")
    try:
        user = ContainerUser(int(uid_s), int(gid_s or uid_s))
    except ValueError:
        raise ValueError(f"container user {explicit!r}: expected numeric uid[:gid]") from None
    if user.uid == 0:
        raise ValueError("container user: containers never run as root; pass a non-root uid")
    return user


def read_spec(run_dir: Path) -> RunSpec | None:
    """The run's experiment.json (written by the host before any runtime starts), or None."""
    try:
        return RunSpec.model_validate_json((run_dir / EXPERIMENT_FILE).read_text("utf-8"))
    except (OSError, ValueError):
        return None


def run_labels(run_dir: Path) -> dict[str, str]:
    """Labels naming the run a container works for (the run dir is the lookup key)."""
    run_dir = run_dir.resolve()
    spec = read_spec(run_dir)
    labels = {LABEL_RUN_DIR: str(run_dir), LABEL_RUN_ID: spec.run_id if spec else str(run_dir)}
    if spec is not None and spec.study_id:
        labels[LABEL_STUDY_ID] = spec.study_id
    return labels


def shm_size(run_dir: Path, fallback: str | None = DEFAULT_SHM_SIZE) -> str | None:
    """The experiment's ``runtime.shm_size`` (what its result records), else ``fallback``."""
    spec = read_spec(run_dir)
    return spec.config.runtime.shm_size if spec is not None else fallback


class ActiveRun:
    """Which thread is inside a runtime's ``run`` (a study runs one per GPU slot thread,
    and its Ctrl+C / SIGTERM handler calls ``cleanup`` from the main thread).

    ``cleanup`` stops the container at once but must not return before that run has removed
    the token file and given the run directory back: the launcher exits right after it,
    and a slot thread dies with the process, mid-teardown.
    """

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._thread: int | None = None
        self._idle = threading.Event()
        self._idle.set()

    @contextlib.contextmanager
    def running(self) -> Iterator[None]:
        with self._lock:
            self._thread = threading.get_ident()
            self._idle.clear()
        try:
            yield
        finally:
            with self._lock:
                self._thread = None
                self._idle.set()

    def in_other_thread(self) -> bool:
        with self._lock:
            return self._thread not in (None, threading.get_ident())

    def wait(self, timeout_s: float) -> bool:
        """Until no run is in progress (True), or ``timeout_s`` passed (False)."""
        return self._idle.wait(timeout=timeout_s)


#: how long a runtime's cleanup waits for the interrupted run to tidy up
CLEANUP_WAIT_S = 120


# -- run-directory ownership (only matters when llem runs as root) ---------------------------
def _entries(root: Path) -> Iterator[Path]:
    """``root`` and everything under it, symlinks not followed (a container could plant one
    pointing anywhere; a root chown through it would hand that target over)."""
    yield root
    for base, dirs, files in os.walk(root, followlinks=False):
        for name in dirs + files:
            yield Path(base) / name


def hand_over(run_dir: Path, user: ContainerUser) -> None:
    """Root launcher: give the run directory (and what an earlier attempt left there, such
    as a harness.log the harness appends to) to the container's uid, so it can write."""
    if os.getuid() != 0:
        return
    for p in _entries(run_dir):
        with contextlib.suppress(FileNotFoundError):
            os.lchown(p, user.uid, user.gid)


def take_back(run_dir: Path) -> None:
    """Root launcher: what the unprivileged container user owns in the run directory goes
    back to llem's own uid:gid (files of an explicitly chosen uid are left to it)."""
    if os.getuid() != 0 or not run_dir.exists():
        return
    for p in _entries(run_dir):
        with contextlib.suppress(FileNotFoundError):
            if p.lstat().st_uid == UNPRIVILEGED_UID:
                os.lchown(p, os.getuid(), os.getgid())


@contextlib.contextmanager
def run_dir_lent(run_dir: Path, user: ContainerUser) -> Iterator[None]:
    """The run directory belongs to the container's uid for the duration of the block."""
    hand_over(run_dir, user)
    try:
        yield
    finally:
        take_back(run_dir)


# -- the HF token as a file ------------------------------------------------------------------
def hf_token(env: Mapping[str, str]) -> str | None:
    """The token the run should use: from the request's environment, else llem's own."""
    for source in (env, os.environ):
        for key in TOKEN_VARS:
            if source.get(key):
                return source[key]
    return None


def without_tokens(env: Mapping[str, str]) -> dict[str, str]:
    return {k: v for k, v in env.items() if k not in TOKEN_VARS}


def _secret_parent() -> str | None:
    """/dev/shm when it is a writable directory (tmpfs: the token never reaches a disk)."""
    shm = "/dev/shm"
    return shm if os.path.isdir(shm) and os.access(shm, os.W_OK | os.X_OK) else None


@contextlib.contextmanager
def token_file(token: str | None, user: ContainerUser) -> Iterator[Path | None]:
    """A 0600 file holding ``token``, owned by the container's uid, in a 0700 directory of
    llem's that is removed when the block ends; None when there is no token."""
    if not token:
        yield None
        return
    sweep_stale_token_dirs()
    d = Path(tempfile.mkdtemp(prefix=f"{TOKEN_DIR_PREFIX}{os.getpid()}-", dir=_secret_parent()))
    try:
        path = d / "hf_token"
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        with os.fdopen(fd, "w", encoding="utf-8") as fh:
            fh.write(token)
        if os.getuid() == 0:
            os.chown(path, user.uid, user.gid)
        yield path
    finally:
        shutil.rmtree(d, ignore_errors=True)


def discard_token_source(source: str | None) -> None:
    """Remove a token directory a killed launcher left behind (found through the mount of
    its container); anything not made by :func:`token_file` is left alone."""
    if not source:
        return
    d = Path(source).parent
    if d.name.startswith(TOKEN_DIR_PREFIX) and Path(source).name == "hf_token":
        shutil.rmtree(d, ignore_errors=True)


def _pid_alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:  # someone else's live process
        return True
    return True


def sweep_stale_token_dirs() -> int:
    """Remove token directories of launchers that no longer run (killed between writing the
    file and removing it, before a container was there to find it by). Only this user's
    directories named ``llem-secret-<pid>-...`` whose pid is gone; returns how many."""
    removed = 0
    for parent in {p for p in (_secret_parent(), tempfile.gettempdir()) if p}:
        try:
            entries = list(Path(parent).glob(f"{TOKEN_DIR_PREFIX}*"))
        except OSError:
            continue
        for d in entries:
            pid_s = d.name[len(TOKEN_DIR_PREFIX):].split("-", 1)[0]
            try:
                st = d.lstat()
            except OSError:
                continue
            if not pid_s.isdigit() or not stat.S_ISDIR(st.st_mode) or st.st_uid != os.getuid():
                continue
            if int(pid_s) != os.getpid() and not _pid_alive(int(pid_s)):
                shutil.rmtree(d, ignore_errors=True)
                removed += 1
    return removed
