"""Image references and where images live (registry precedence, user config)."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

import yaml

from llem.images.base import CPU
from llem.images.matrix import Matrix, llem_version, load_matrix
from llem_schema.errors import ConfigError

# --------------------------------------------------------------------------------------
# registry and references


def user_config_path() -> Path:
    """The user config file (``~/.config/llem/config.yaml`` on Linux): settings of this user
    rather than of an experiment, such as ``registry:``."""
    from platformdirs import user_config_dir

    return Path(user_config_dir("llem")) / "config.yaml"


def user_config() -> dict[str, Any]:
    path = user_config_path()
    if not path.is_file():
        return {}
    try:
        data = yaml.safe_load(path.read_text()) or {}
    except yaml.YAMLError as exc:
        raise ConfigError(f"{path}: not valid YAML: {str(exc).splitlines()[0]}") from exc
    if not isinstance(data, dict):
        raise ConfigError(f"{path}: expected a mapping like 'registry: ghcr.io/myorg'")
    return data


def resolve_registry(cli: str | None = None, matrix: Matrix | None = None) -> str:
    """Registry prefix: --registry, else $LLEM_REGISTRY, else ``registry:`` in the user config,
    else the matrix's ``registry:`` -- the one CI pushes to, so a default install pulls what
    the release workflow published.

    A registry with credentials in it (``user:pass@host``) is refused: it would be written
    into every result, manifest and log that records the image reference."""
    value = cli or os.environ.get("LLEM_REGISTRY") or user_config().get("registry")
    if not value:
        return (matrix or load_matrix()).registry
    value = str(value).rstrip("/")
    check_no_credentials(value)
    return value


def check_no_credentials(registry: str) -> None:
    host = registry.split("://", 1)[-1].split("/", 1)[0]
    if "@" in host:
        safe = host.rsplit("@", 1)[1]
        raise ConfigError(
            f"registry '{safe}': credentials in a registry address are refused (they would be "
            "stored with every result); use `docker login` or LLEM_REGISTRY_USER and "
            "LLEM_REGISTRY_PASSWORD, read only at pull time"
        )


def pull_auth() -> dict[str, str] | None:
    """Credentials for a pull from LLEM_REGISTRY_USER / LLEM_REGISTRY_PASSWORD, else None
    (Docker's own config and credential helpers apply). Never logged or stored."""
    user, password = os.environ.get("LLEM_REGISTRY_USER"), os.environ.get("LLEM_REGISTRY_PASSWORD")
    return {"username": user, "password": password} if user and password else None


def image_repo(backend: str, registry: str | None = None,
               namespace: str = "llenergymeasure") -> str:
    """Where a backend's images live: ``<registry>/<namespace>/<backend>``."""
    repo = f"{namespace}/{backend}"
    return f"{registry}/{repo}" if registry else repo


def image_ref(backend: str, variant: str, registry: str | None = None,
              version: str | None = None, namespace: str = "llenergymeasure") -> str:
    suffix = CPU if variant == CPU else f"cuda{variant}"
    return f"{image_repo(backend, registry, namespace)}:{version or llem_version()}-{suffix}"


def mirror_ref(backend: str, ref: str, to: str, namespace: str = "llenergymeasure") -> str:
    """Where ``llem images mirror --to TO`` puts ``ref``: the reference that resolving with
    ``--registry TO`` names (the source registry's own path, e.g. the ``/llenergymeasure``
    of ``ghcr.io/llenergymeasure``, is not carried over), same tag."""
    to = to.rstrip("/")
    check_no_credentials(to)
    return f"{image_repo(backend, to, namespace)}:{split_ref(ref)[1] or 'latest'}"


def split_ref(ref: str) -> tuple[str, str | None, str | None]:
    """'reg:5000/a/b:tag@sha256:x' -> ('reg:5000/a/b', 'tag', 'sha256:x')."""
    digest = None
    if "@" in ref:
        ref, digest = ref.split("@", 1)
    tag = None
    last = ref.rsplit("/", 1)[-1]
    if ":" in last:
        ref, tag = ref.rsplit(":", 1)
    return ref, tag, digest
