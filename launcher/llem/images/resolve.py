"""Which image an experiment runs: explicit --image, lock, or matrix + driver CUDA."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Literal

from llem.images.base import ImageError
from llem.images.cuda import DriverCuda, choose_variant, detect_driver_cuda
from llem.images.lock import LockEntry, LockFile
from llem.images.matrix import Matrix, load_matrix
from llem.images.refs import image_ref, resolve_registry, split_ref

if TYPE_CHECKING:  # pragma: no cover
    pass


# --------------------------------------------------------------------------------------
# resolution


@dataclass
class ResolvedImage:
    backend: str
    ref: str
    source: Literal["explicit", "lock", "resolved"]
    variant: str | None = None  # '12', 'cpu'; None when --image/lock said it
    driver: DriverCuda | None = None
    locked: LockEntry | None = None
    notes: list[str] = field(default_factory=list)


def resolve_image(
    backend: str,
    image: str | None = None,
    registry: str | None = None,
    cuda: str | None = None,
    lock: LockFile | None = None,
    matrix: Matrix | None = None,
) -> ResolvedImage:
    """Pick the reference to run, without touching Docker. See the module docstring."""
    driver = detect_driver_cuda(cuda)
    if lock is not None:
        entry = lock.images.get(backend)
        if entry is None:
            raise ImageError(
                f"the lock file pins no image for backend '{backend}' "
                f"(it has: {', '.join(sorted(lock.images)) or 'none'}); re-run `llem images lock`"
            )
        if image and image not in (entry.ref, f"{split_ref(entry.ref)[0]}@{entry.digest}"):
            raise ImageError(
                f"--image {image} differs from the lock file's {entry.ref}; drop one of them"
            )
        return ResolvedImage(backend, entry.ref, "lock", driver=driver, locked=entry)
    if image:
        return ResolvedImage(backend, image, "explicit", driver=driver)
    matrix = matrix or load_matrix()
    entries = matrix.for_backend(backend)
    if not entries:
        raise ImageError(f"images/matrix.yaml lists no image for backend '{backend}'")
    variant = choose_variant(driver, [e.cuda_choice for e in entries], backend)
    ref = image_ref(backend, variant, resolve_registry(registry, matrix),
                    namespace=matrix.namespace)
    return ResolvedImage(backend, ref, "resolved", variant=variant, driver=driver)
