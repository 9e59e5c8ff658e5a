"""Bundles (``llem images save``/``load``): a ``docker save`` archive that carries the lock
of what it holds, so the host that loads it can check it got the pinned bytes.

What survives ``docker save``/``load`` is the image id (the digest of the image config),
not the registry's manifest digest; the archive's ``manifest.json`` names each image's
config file by that digest, for every tag in the archive. ``save`` appends the lock as the
member ``llem.lock`` (``docker load`` skips files it does not know); ``load`` checks the
archive against it, or against a lock given explicitly, before loading anything, and the
daemon's answer after.
"""

from __future__ import annotations

import io
import json
import shutil
import tarfile
from collections.abc import Iterable
from dataclasses import dataclass, field
from pathlib import Path

import yaml

from llem.images.base import ImageError
from llem.images.lock import LockEntry, LockFile
from llem_schema.errors import ConfigError

#: the lock inside a bundle
BUNDLE_LOCK = "llem.lock"
#: room asked for beyond the images' own bytes: tar headers, the lock, filesystem slack
HEADROOM = 64 * 1024**2


@dataclass
class BundleIndex:
    """What a bundle says it holds: tag -> image id, and the lock it carries (if any)."""

    tags: dict[str, str] = field(default_factory=dict)
    lock: LockFile | None = None


def _config_id(config_path: str) -> str:
    """'<hex>.json' (docker < 25) or 'blobs/sha256/<hex>' (OCI layout) -> 'sha256:<hex>'."""
    name = config_path.rsplit("/", 1)[-1].removesuffix(".json")
    return f"sha256:{name}"


def read_index(path: Path) -> BundleIndex:
    """The bundle's ``manifest.json`` and ``llem.lock`` (headers are read; layers skipped)."""
    index = BundleIndex()
    try:
        with tarfile.open(path, "r:") as tar:
            for member in tar:
                name = member.name.removeprefix("./")
                if name not in ("manifest.json", BUNDLE_LOCK) or not member.isfile():
                    continue
                fh = tar.extractfile(member)
                assert fh is not None
                data = fh.read()
                if name == BUNDLE_LOCK:
                    index.lock = LockFile.model_validate(yaml.safe_load(data) or {})
                    continue
                for item in json.loads(data):
                    for tag in item.get("RepoTags") or []:
                        index.tags[tag] = _config_id(item["Config"])
    except (OSError, tarfile.TarError) as exc:
        raise ConfigError(f"{path}: not a readable image bundle ({exc})") from exc
    except (ValueError, KeyError, TypeError) as exc:  # manifest.json / llem.lock malformed
        raise ConfigError(f"{path}: its manifest.json or {BUNDLE_LOCK} is malformed "
                          f"({str(exc).splitlines()[0]})") from exc
    return index


def mismatch(where: str, backend: str, entry: LockEntry, found: str | None) -> str | None:
    """What is wrong, in words, when ``found`` (the image id that ``where`` has under the
    pinned tag, None for none) is not the pinned image; None when it is."""
    if found == entry.image_id:
        return None
    if found is None:
        return f"{where}: no image {entry.ref}, which the lock pins for {backend}"
    return (f"{entry.ref} is {found[:19]} {where} but the lock pins {entry.image_id[:19]} "
            f"for {backend} (digest {entry.digest or 'n/a'})")


def check(where: str, index: BundleIndex, lock: LockFile, then: str) -> None:
    """Every image the lock pins is in the bundle, under its tag, with the pinned id; else
    one line: the first problem, 'refused', and ``then`` (what happened / what to do)."""
    for backend, entry in sorted(lock.images.items()):
        problem = mismatch(where, backend, entry, index.tags.get(entry.ref))
        if problem:
            raise ConfigError(f"{problem}: refused; {then}")


def append_lock(path: Path, lock: LockFile) -> None:
    """Add ``llem.lock`` to a finished ``docker save`` archive."""
    data = yaml.safe_dump(lock.model_dump(mode="json"), sort_keys=True).encode()
    info = tarfile.TarInfo(BUNDLE_LOCK)
    info.size, info.mode = len(data), 0o644
    with tarfile.open(path, "a:") as tar:
        tar.addfile(info, io.BytesIO(data))


def _gb(n: int) -> str:
    return f"{n / 1e9:.1f} GB"


def check_room(output: Path, need: int) -> None:
    """Refuse before the first byte when ``output``'s folder is missing or has less free
    space than ``need`` (the images' own size): a full disk found mid-save costs the minutes
    of streaming a multi-GB image and leaves nothing."""
    folder = output.parent
    if not folder.is_dir():
        raise ConfigError(f"{output}: folder {folder} does not exist; create it or choose "
                          f"another -o")
    free = shutil.disk_usage(folder).free
    if free < need + HEADROOM:
        raise ConfigError(f"{output}: {_gb(free)} free in {folder} but the bundle needs at "
                          f"least {_gb(need + HEADROOM)}; free space there or choose "
                          f"another -o")


def write(chunks: Iterable[bytes], path: Path, output: Path) -> None:
    """Stream ``docker save``'s answer into ``path`` (the temporary name of ``output``); a
    write that fails (the disk filled after the check, a quota) becomes one line naming
    ``output`` and the fix, not a traceback."""
    try:
        with open(path, "wb") as fh:
            for chunk in chunks:
                fh.write(chunk)
    except OSError as exc:
        raise ImageError(f"writing {output}: {exc.strerror or exc}; nothing was saved (free "
                         f"space in {output.parent} or choose another -o)") from None
