"""`llem rerun` of a docker-runtime result against a real dockerd, registry and CPU image:
same config hash, image digest and seeds, from the local image store and from the registry.

Brought up by .ci/integration-setup.sh; skipped with the reason when the daemon or the
setup's state is missing. Every image reference this file creates is under a repository of
its own (``llem-rerun-it-<random>``), tagged from the shared test image and removed again;
the shared image itself is never removed or re-tagged.
"""

from __future__ import annotations

import contextlib
import json
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest
from llem_it import base_env, docker_skip_reason, find_result, llem

from llem_schema.result import ExperimentResult

_REASON = docker_skip_reason()
pytestmark = [pytest.mark.integration, pytest.mark.slow,
              pytest.mark.skipif(_REASON is not None, reason=_REASON or "")]

SEED = ["--seed", "13"]


@pytest.fixture
def own_repo(it_env: dict[str, str], client) -> Iterator[str]:
    """The shared test image pushed under a repository only this test uses; every local
    reference to that repository is removed afterwards (the image stays: it is shared)."""
    repo = f"{it_env['LLEM_IT_OPEN_REGISTRY']}/llem-rerun-it-{uuid.uuid4().hex[:8]}/pytorch"
    img = client.images.get(it_env["LLEM_IT_IMAGE"])
    assert img.tag(repo, "t")
    for line in client.images.push(repo, "t", stream=True, decode=True):
        assert "error" not in line, line
    yield repo
    _forget(client, repo)


def _forget(client, repo: str) -> None:
    """Drop this repository's tags and digests from the local store, not the image."""
    from docker.errors import ImageNotFound

    for img in client.images.list():
        attrs = img.attrs
        for ref in (attrs.get("RepoTags") or []) + (attrs.get("RepoDigests") or []):
            if ref.startswith((repo + ":", repo + "@")):
                with contextlib.suppress(ImageNotFound):  # went with its last tag
                    client.images.remove(ref, noprune=True)


def _original(tmp_path: Path, image: str) -> tuple[Path, ExperimentResult]:
    run = llem("run", "--preset", "quick-test", "--runtime", "docker", "--image", image, *SEED,
               "--results-dir", str(tmp_path / "orig"), env=base_env())
    assert run.returncode == 0, run.stdout + run.stderr
    path = find_result(tmp_path / "orig")
    return path, ExperimentResult.model_validate_json(path.read_text())


def _rerun(path: Path, results: Path, *extra: str):
    return llem("rerun", str(path), "--results-dir", str(results), "-q", *extra, env=base_env())


def _assert_same(orig: ExperimentResult, results: Path) -> ExperimentResult:
    new = ExperimentResult.model_validate_json(find_result(results).read_text())
    assert new.config_hash == orig.config_hash
    assert new.environment.image_digest == orig.environment.image_digest
    assert new.environment.runtime == "docker"
    assert (new.config.decoding.seed, new.config.workload.seed) == (13, 13)
    assert new.config.workload.traffic.seed == orig.config.workload.traffic.seed
    assert new.study_id != orig.study_id
    return new


def test_rerun_from_the_local_store_and_from_the_registry(tmp_path, own_repo, client, it_env):
    from docker.errors import ImageNotFound

    path, orig = _original(tmp_path, f"{own_repo}:t")
    digest = orig.environment.image_digest
    assert digest and digest.startswith("sha256:")
    assert orig.environment.image_ref == f"{own_repo}:t"

    here = _rerun(path, tmp_path / "again", "--compare", "-m", "tokens_per_s")
    assert here.returncode == 0, here.stdout + here.stderr
    assert f"image: {own_repo}@{digest} (here;" in here.stdout
    assert "environment before the run" in here.stdout
    assert "config hash, seeds, image digest: same as the original" in here.stdout
    assert "compare: rerun / original" in here.stdout
    _assert_same(orig, tmp_path / "again")

    # not in the local store any more: found in the registry and pulled by digest
    _forget(client, own_repo)
    with pytest.raises(ImageNotFound):
        client.images.get(f"{own_repo}@{digest}")
    pulled = _rerun(path, tmp_path / "pulled")
    assert pulled.returncode == 0, pulled.stdout + pulled.stderr
    assert f"(in {own_repo.split('/')[0]}, pulled by digest;" in pulled.stdout
    _assert_same(orig, tmp_path / "pulled")
    # the same bytes as the image the original ran in
    assert client.images.get(f"{own_repo}@{digest}").id == \
        client.images.get(it_env["LLEM_IT_IMAGE"]).id
    assert not client.containers.list(all=True,
                                      filters={"label": "io.llenergymeasure.run_dir"})


def test_a_digest_neither_here_nor_in_the_registry_is_refused(tmp_path, own_repo):
    path, _ = _original(tmp_path, f"{own_repo}:t")
    data = json.loads(path.read_text())
    data["environment"]["image_digest"] = "sha256:" + "0" * 64  # outside the config hash
    moved = tmp_path / "gone" / "result.json"
    moved.parent.mkdir()
    moved.write_text(json.dumps(data))
    r = _rerun(moved, tmp_path / "never")
    assert r.returncode == 2, r.stdout + r.stderr
    lines = r.stderr.strip().splitlines()
    assert len(lines) == 1 and "neither on this host nor in 127.0.0.1:5000" in lines[0]
    assert not (tmp_path / "never").exists()
