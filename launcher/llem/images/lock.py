"""Lock files: each backend pinned to a digest, so a study re-runs on the same bytes."""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING

import yaml
from pydantic import BaseModel, ConfigDict, Field, ValidationError

from llem_schema.atomic import atomic_write_text
from llem_schema.errors import ConfigError

if TYPE_CHECKING:  # pragma: no cover
    pass


# --------------------------------------------------------------------------------------
# lock file


class LockEntry(BaseModel):
    model_config = ConfigDict(extra="forbid")

    ref: str = Field(description="The reference that was resolved (tag form).")
    digest: str | None = Field(
        None, description="Registry manifest digest (sha256:...), what `docker pull` verifies."
    )
    image_id: str = Field(description="Image config digest: survives `docker save`/`load`.")


class LockFile(BaseModel):
    model_config = ConfigDict(extra="forbid")

    lock_version: int = 1
    images: dict[str, LockEntry] = Field(default_factory=dict)

    def write(self, path: Path) -> None:
        atomic_write_text(path, yaml.safe_dump(self.model_dump(mode="json"), sort_keys=True))

    @classmethod
    def read(cls, path: Path) -> LockFile:
        try:
            return cls.model_validate(yaml.safe_load(Path(path).read_text()) or {})
        except OSError as exc:
            raise ConfigError(f"{path}: cannot read lock file ({exc.strerror})") from exc
        except (yaml.YAMLError, ValidationError) as exc:
            raise ConfigError(f"{path}: not a valid llem.lock: {str(exc).splitlines()[0]}") from exc
