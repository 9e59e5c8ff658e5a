"""``llem images list|pull|build|lock|save|load|mirror``: the harness images on this host.

Every failure ends in one line with the fix and exit code 1 (2 for bad input), never a
traceback: these commands are run by people setting up a machine.
"""

from __future__ import annotations

import contextlib
import re
import shutil
import subprocess
import sys
import tempfile
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import TYPE_CHECKING, Any, TypeVar

import typer
from rich.console import Console
from rich.table import Table

from llem.cli.app import command_group

if TYPE_CHECKING:
    from llem.images.matrix import MatrixEntry
    from llem.images.registry import EnsuredImage

#: kept equal to llem.images.LOCK_FILE (a test checks); not imported so that `llem --help`
#: does not load the image machinery
LOCK_FILE = "llem.lock"

app = command_group("Build, fetch, pin and move the harness container images.")
console = Console(stderr=True, soft_wrap=True)
out = Console(soft_wrap=True)
T = TypeVar("T")


def _guard(fn: Callable[[], T]) -> T:
    """Turn our one-line errors into exit codes."""
    from llem.images.base import ImageError
    from llem_schema.errors import ConfigError

    try:
        return fn()
    except ConfigError as exc:
        console.print(f"[red]error:[/red] {exc}", highlight=False)
        raise typer.Exit(2) from None
    except (ImageError, RuntimeError) as exc:
        console.print(f"[red]error:[/red] {exc}", highlight=False)
        raise typer.Exit(1) from None


def _backends(backends: list[str] | None) -> list[str]:
    from llem.images.matrix import load_matrix
    from llem_schema.errors import ConfigError

    matrix = load_matrix()
    known = sorted({e.backend for e in matrix.images})
    chosen = backends or ["pytorch"]
    for b in chosen:
        if b not in known:
            raise ConfigError(
                f"backend '{b}': not in images/matrix.yaml (known: {', '.join(known)})"
            )
    return chosen


#: a digest in the listing: "sha256:" and 12 hex digits, as `docker images` shows ids
SHORT_DIGEST = 19


def images_table(rows: list[tuple[str, str, str, str, str]], width: int
                 ) -> tuple[Table, list[str]]:
    """The matrix as a table that reads at ``width`` columns: each image's repository is
    the title's pattern, so a row shows its tag; digests are shortened (``llem images
    lock`` pins them in full); the base image is left out first when there is no room."""
    from llem.images.refs import split_ref
    from llem.results.display import Col, fit_table

    prefixes = {split_ref(ref)[0].removesuffix(b) for b, _, ref, _, _ in rows}
    by_tag = len(prefixes) == 1
    title = f"harness images: {prefixes.pop()}<backend>:<tag>" if by_tag else "harness images"
    cells = [[b, cuda, (split_ref(ref)[1] or ref) if by_tag else ref, base,
              digest[:SHORT_DIGEST] if digest.startswith("sha256:") else digest]
             for b, cuda, ref, base, digest in rows]
    cols = [Col("backend"), Col("cuda"), Col("tag" if by_tag else "image", fold=not by_tag),
            Col("base image", drop=1), Col("local digest")]
    return fit_table(cols, cells, width, title=title)


def _print_images(rows: list[tuple[str, str, str, str, str]]) -> None:
    from llem.results.display import hidden_note

    table, hidden = images_table(rows, out.width)
    out.print(table)
    note = hidden_note(hidden, out.width, "; images/matrix.yaml lists the base images")
    if note:
        out.print(f"[dim]{note}[/]", soft_wrap=False)


@app.command("list")
def list_images(
    registry: str | None = typer.Option(None, help="Registry prefix (else LLEM_REGISTRY/config)."),
) -> None:
    """The image matrix, with what is present locally and its digest."""
    from llem.images.base import ImageError
    from llem.images.matrix import load_matrix
    from llem.images.refs import image_ref, resolve_registry, split_ref
    from llem.images.registry import docker_client, local_image, repo_digest

    def go() -> None:
        matrix = load_matrix()
        reg = resolve_registry(registry)
        try:
            client = docker_client(timeout=10)
        except ImageError:
            client = None
        rows = []
        for e in matrix.images:
            ref = image_ref(e.backend, e.cuda, reg, namespace=matrix.namespace)
            present = "-"
            if client is not None:
                img = local_image(client, ref)
                if img is not None:
                    present = repo_digest(img.attrs, split_ref(ref)[0]) or img.id
            else:
                present = "(no daemon)"
            rows.append((e.backend, e.cuda, ref, e.base_image, present))
        _print_images(rows)

    _guard(go)


@app.command()
def pull(
    backends: list[str] | None = typer.Argument(None, help="Backends (default: pytorch)."),
    image: str | None = typer.Option(None, help="Explicit image ref or ref@sha256:digest."),
    registry: str | None = typer.Option(None, help="Registry prefix (else LLEM_REGISTRY/config)."),
    cuda: str | None = typer.Option(None, help="CUDA version to assume (e.g. 12.4) or 'cpu'."),
    lock: Path | None = typer.Option(None, help="Pull the digests pinned in this lock file."),
) -> None:
    """Pull the image each backend resolves to on this host (progress bar per layer)."""
    from llem.images.lock import LockFile
    from llem.images.registry import docker_client, ensure_image
    from llem.images.resolve import resolve_image

    def go() -> None:
        client = docker_client()
        lf = LockFile.read(lock) if lock else None
        chosen = sorted(lf.images) if (lf and not backends) else _backends(backends)
        for b in chosen:
            res = resolve_image(b, image=image, registry=registry, cuda=cuda, lock=lf)
            ens = ensure_image(client, res, "always" if lf is None else "missing", console)
            out.print(f"{b}: {ens.ref} {ens.digest or ens.image_id}", highlight=False)

    _guard(go)


@app.command()
def lock(
    study: Path = typer.Argument(..., help="Study or experiment YAML."),
    output: Path = typer.Option(Path(LOCK_FILE), "-o", "--output", help="Lock file to write."),
    registry: str | None = typer.Option(None, help="Registry prefix (else LLEM_REGISTRY/config)."),
    cuda: str | None = typer.Option(None, help="CUDA version to assume (e.g. 12.4) or 'cpu'."),
    pull_policy: str = typer.Option("missing", "--pull", help="missing|always|never"),
) -> None:
    """Pin each backend the study uses to an image digest (writes llem.lock)."""
    from llem.images.lock import LockFile
    from llem.images.registry import docker_client, ensure_image, lock_entry, study_backends
    from llem.images.resolve import resolve_image

    def go() -> None:
        client = docker_client()
        lf = LockFile()
        for b in study_backends(study):
            res = resolve_image(b, registry=registry, cuda=cuda)
            ens = ensure_image(client, res, pull_policy, console)
            lf.images[b] = lock_entry(client, ens)
            out.print(f"{b}: {ens.ref} {ens.digest or '(no registry digest)'} {ens.image_id[:19]}",
                      highlight=False)
        lf.write(output)
        console.print(f"wrote {output}")

    _guard(go)


def _refs_for(client: Any, lock: Path | None, backends: list[str] | None,
              registry: str | None, cuda: str | None) -> list[tuple[str, EnsuredImage]]:
    """(backend, the local image it resolves to), pinned ones checked against the lock."""
    from llem.images.lock import LockFile
    from llem.images.registry import ensure_image
    from llem.images.resolve import resolve_image

    lf = LockFile.read(lock) if lock else None
    chosen = sorted(lf.images) if (lf and not backends) else _backends(backends)
    found = []
    for b in chosen:
        res = resolve_image(b, registry=registry, cuda=cuda, lock=lf)
        found.append((b, ensure_image(client, res, "never", console)))
    return found


def _tag_is_pinned(client: Any, backend: str, ens: EnsuredImage, lock: Path) -> None:
    """``docker save`` archives an image under the tag it is given: make sure the tag names
    the pinned image (tagging it where the tag is missing, e.g. after a pull by digest), or
    refuse, so that a moved tag never ships other bytes under a lock."""
    from llem.images.refs import split_ref
    from llem.images.registry import local_image
    from llem_schema.errors import ConfigError

    tagged = local_image(client, ens.ref)
    if tagged is None:
        repo, tag, _ = split_ref(ens.ref)
        client.images.get(ens.image_id).tag(repo, tag or "latest")
    elif tagged.id != ens.image_id:
        raise ConfigError(
            f"{ens.ref} is {tagged.id[:19]} here but {lock} pins {ens.image_id[:19]} for "
            f"{backend}: refused, the bundle would hold other bytes under that name; "
            f"`docker tag {ens.image_id[:19]} {ens.ref}` or re-lock")


@app.command()
def save(
    output: Path = typer.Option(..., "-o", "--output", help="Bundle tar to write."),
    backends: list[str] | None = typer.Argument(None, help="Backends (default: pytorch)."),
    lock: Path | None = typer.Option(None, help="Save exactly the images pinned here."),
    registry: str | None = typer.Option(None),
    cuda: str | None = typer.Option(None),
) -> None:
    """Write images to one tar for an air-gapped host (`llem images load -i` there).

    The bundle carries the lock of what it holds (llem.lock inside the tar), which
    `llem images load` checks; with --lock, exactly the pinned images."""
    from llem.images import bundle
    from llem.images.lock import LockFile
    from llem.images.registry import docker_client, lock_entry

    def go() -> None:
        client = docker_client(timeout=600)
        images = _refs_for(client, lock, backends, registry, cuda)
        if lock is not None:
            for b, ens in images:
                _tag_is_pinned(client, b, ens, lock)
        held = LockFile(images={b: lock_entry(client, ens) for b, ens in images})
        # docker save shares layers between images: the largest one is what must fit
        bundle.check_room(output, max(client.images.get(ens.image_id).attrs["Size"]
                                      for _, ens in images))
        tmp = output.with_name(f".{output.name}.tmp")
        try:
            # `docker save` of several names in one archive: the SDK's Image.save takes one,
            # the API takes many (GET /images/get?names=a&names=b).
            res = client.api._get(client.api._url("/images/get"),
                                  params={"names": [ens.ref for _, ens in images]}, stream=True)
            client.api._raise_for_status(res)
            bundle.write(res.iter_content(chunk_size=2 * 1024 * 1024), tmp, output)
            # what was written, not what was asked for: a tag moved meanwhile is caught here
            bundle.check(f"in {output}", bundle.read_index(tmp), held,
                         "a tag moved while saving; save again")
            bundle.append_lock(tmp, held)
            tmp.replace(output)
        finally:
            tmp.unlink(missing_ok=True)
        for _, ens in images:
            out.print(f"saved {ens.ref} {ens.image_id[:19]}", highlight=False)

    _guard(go)


@app.command()
def load(
    input: Path = typer.Option(..., "-i", "--input", help="Bundle tar from `images save`."),
    lock: Path | None = typer.Option(
        None, help="Check against this lock (default: the one inside the bundle)."),
) -> None:
    """Load a bundle written by `llem images save` (no registry needed).

    Before anything is loaded, every image the lock pins must be in the bundle under its
    tag with the pinned id, and after loading the daemon must hold it: otherwise refused
    (exit 2). A bundle without a lock (plain `docker save`) loads unchecked, with a note."""
    from llem.images import bundle
    from llem.images.base import ImageError
    from llem.images.lock import LockFile
    from llem.images.registry import docker_client, local_image
    from llem_schema.errors import ConfigError

    def go() -> None:
        if not input.is_file():
            raise ConfigError(f"{input}: no such file")
        expected = LockFile.read(lock) if lock else None
        index = bundle.read_index(input)
        expected = expected or index.lock
        if expected is not None:
            bundle.check(f"in {input}", index, expected, "nothing was loaded")
        client = docker_client(timeout=600)
        with open(input, "rb") as fh:
            for ev in client.api.load_image(fh):
                if "error" in ev:
                    raise ImageError(f"load {input}: {ev['error']}")
                if ev.get("stream", "").strip():
                    out.print(ev["stream"].strip(), highlight=False)
        if expected is None:
            console.print(f"note: {input} carries no {bundle.BUNDLE_LOCK}: loaded unchecked "
                          "(pass --lock to check it)", highlight=False)
            return
        for b, entry in sorted(expected.images.items()):
            img = local_image(client, entry.ref)
            problem = bundle.mismatch("on this host after loading", b, entry,
                                      img.id if img is not None else None)
            if problem:
                raise ConfigError(f"{problem}: refused; `docker rmi {entry.ref}` and get "
                                  "the bundle again")
            out.print(f"verified {b}: {entry.ref} {entry.image_id[:19]}", highlight=False)

    _guard(go)


@app.command()
def mirror(
    to: str = typer.Option(..., "--to", help="Target registry prefix, e.g. registry.lab:5000."),
    backends: list[str] | None = typer.Argument(None, help="Backends (default: pytorch)."),
    lock: Path | None = typer.Option(None, help="Mirror the images pinned here."),
    registry: str | None = typer.Option(None, help="Where the images come from."),
    cuda: str | None = typer.Option(None),
) -> None:
    """Copy (pinned) images to a private registry; then run with --registry TO."""
    from llem.images.base import ImageError
    from llem.images.matrix import load_matrix
    from llem.images.refs import mirror_ref, split_ref
    from llem.images.registry import docker_client, pull_error_hint

    def go() -> None:
        client = docker_client(timeout=600)
        namespace = load_matrix().namespace
        for b, ens in _refs_for(client, lock, backends, registry, cuda):
            target = mirror_ref(b, ens.ref, to, namespace)
            repo, tag, _ = split_ref(target)
            client.images.get(ens.image_id).tag(repo, tag)
            digest = None
            for ev in client.api.push(repo, tag=tag, stream=True, decode=True):
                if "error" in ev:
                    raise ImageError(pull_error_hint(target, ev["error"]).replace(
                        "pull ", "push ", 1))
                digest = (ev.get("aux") or {}).get("Digest", digest)
            out.print(f"{target} {digest}", highlight=False)

    _guard(go)


@contextlib.contextmanager
def _build_context(entry: MatrixEntry, root: Path, wheelhouse: Path | None) -> Iterator[Path]:
    from llem.images.base import ImageError

    ctx = Path(tempfile.mkdtemp(prefix="llem-build-"))
    try:
        shutil.copy(root / "images" / f"{entry.backend}.Dockerfile", ctx / "Dockerfile")
        wh = ctx / "wheelhouse"
        if wheelhouse is not None:
            shutil.copytree(wheelhouse, wh)
        else:
            wh.mkdir()
            py = sys.executable
            cmd = [py, "-m", "pip", "wheel", "-q", "-w", str(wh),
                   f"{root}[{entry.backend}]", *entry.pip_args]
            console.print(f"building wheelhouse: {' '.join(cmd)}", highlight=False)
            if subprocess.run(cmd).returncode != 0:
                raise ImageError("`pip wheel` failed building the wheelhouse (see pip's output)")
        yield ctx
    finally:
        shutil.rmtree(ctx, ignore_errors=True)


#: the classic builder's " ---> 3f2a1b0c9d8e" line: the image one build step left
STEP_IMAGE = re.compile(r"^ ---> ([0-9a-f]{12,64})\s*$", re.M)


def remove_dangling(client: Any, step_ids: set[str]) -> list[str]:
    """Remove the images of ``step_ids`` that the build left dangling (untagged and no
    image's parent): the last image of each earlier stage of a multi-stage build (the
    ``install`` stage) and, after a failed build, the last step that succeeded. Steps of
    the final image are its parents, never dangling, and stay; dangling images of other
    builds on the daemon are not ours and stay too. Returns the ids removed."""
    from docker.errors import APIError

    removed = []
    for img in client.images.list(filters={"dangling": True}):
        short = img.id.split(":", 1)[-1]
        if any(short.startswith(s) for s in step_ids):
            with contextlib.suppress(APIError):  # in use by a container: not ours to force
                client.images.remove(img.id, noprune=False)
                removed.append(img.id)
    return removed


@app.command()
def build(
    backends: list[str] | None = typer.Argument(None, help="Backends (default: all)."),
    cuda: list[str] | None = typer.Option(None, help="CUDA majors / 'cpu' (default: all)."),
    registry: str | None = typer.Option(None, help="Registry prefix for the tags."),
    base_image: str | None = typer.Option(None, help="Override the matrix's BASE_IMAGE."),
    wheelhouse: Path | None = typer.Option(None, help="Prebuilt wheelhouse (skips pip wheel)."),
    source: Path = typer.Option(Path("."), help="Repository checkout with images/."),
    network: str | None = typer.Option(None, help="Build network mode, e.g. none."),
) -> None:
    """Build images from images/matrix.yaml (docker SDK build, BASE_IMAGE build arg)."""
    from llem.images.base import ImageError
    from llem.images.matrix import llem_version, load_matrix
    from llem.images.refs import image_ref, resolve_registry
    from llem.images.registry import docker_client
    from llem_schema.errors import ConfigError

    def go() -> None:
        root = source.resolve()
        if not (root / "images" / "matrix.yaml").is_file():
            raise ConfigError(f"{root}: no images/matrix.yaml here; pass --source CHECKOUT")
        matrix = load_matrix(root / "images" / "matrix.yaml")
        client = docker_client(timeout=3600)
        version = llem_version()
        rev = subprocess.run(["git", "-C", str(root), "rev-parse", "HEAD"], capture_output=True,
                             text=True).stdout.strip() or "unknown"
        reg = resolve_registry(registry)
        todo = [e for e in matrix.images
                if (not backends or e.backend in backends) and (not cuda or e.cuda in cuda)]
        if not todo:
            raise ConfigError("no matrix entry matches the given backends/--cuda")
        for e in todo:
            tag = image_ref(e.backend, e.cuda, reg, version, matrix.namespace)
            args = {"BASE_IMAGE": base_image or e.base_image, "LLEM_VERSION": version,
                    "VCS_REF": rev, "CUDA": e.cuda, "ENGINE_VERSION": matrix.engine_version(e)}
            with _build_context(e, root, wheelhouse) as ctx:
                console.print(f"building {tag} FROM {args['BASE_IMAGE']}", highlight=False)
                kw: dict[str, Any] = {"path": str(ctx), "tag": tag, "buildargs": args,
                                      "decode": True, "rm": True, "forcerm": True}
                if network:
                    kw["network_mode"] = network
                steps: set[str] = set()  # every image a build step made
                try:
                    for ev in client.api.build(**kw):
                        if "error" in ev:
                            raise ImageError(f"build {tag}: {' '.join(ev['error'].split())}")
                        text = ev.get("stream", "")
                        steps.update(STEP_IMAGE.findall(text))
                        if text.strip():
                            console.print(text.rstrip(), highlight=False, markup=False)
                finally:
                    remove_dangling(client, steps)
            out.print(f"built {tag} {client.images.get(tag).id}", highlight=False)

    _guard(go)
