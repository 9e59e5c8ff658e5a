"""``llem rerun``'s logic: the original checked, the image pinned by digest, the run through
the study runner into a new directory, and the comparison with the original (issue 14).

The rerun that really runs uses ``builtin:tiny-llama`` on the local runtime (a few seconds
on a CPU); the image choice runs against a stand-in Docker client, as the real daemon is
exercised in tests/integration/test_rerun_in_docker.py.
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from rich.console import Console

import llem
from llem.study import envdiff
from llem.study import rerun as rr
from llem_schema.errors import ConfigError
from llem_schema.result import ExperimentResult
from tests.conftest import quick_overrides
from tests.factories import ENVIRONMENT, make_result, make_study, write_result

SEEDS = {"decoding": {"seed": 7}, "workload": {"seed": 11, "traffic": {"seed": 5}}}
DIGEST = ENVIRONMENT["image_digest"]
REPO = ENVIRONMENT["image_ref"].rsplit(":", 1)[0]


@pytest.fixture(scope="module")
def original(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A real two-cycle study on the local runtime; returns cycle 1's result.json."""
    results = tmp_path_factory.mktemp("orig")
    study = llem.run_study({"name": "rr", "model": "builtin:tiny-llama", **SEEDS,
                            "study": {"cycles": 2}}, results, overrides=quick_overrides())
    assert study.ok, study.exit_code
    (path,) = sorted(study.study_dir.glob("*/cycle-1/result.json"))
    return path


def _docker_original(tmp_path: Path) -> Path:
    """A synthetic result measured in an image (environment as the docker runtime records)."""
    return write_result(tmp_path / "orig" / "run", make_result())


# ----------------------------------------------------------------- the original


def test_missing_file_is_one_line(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="file not found") as exc:
        rr.plan(tmp_path / "nope" / "result.json")
    assert "\n" not in str(exc.value)


def test_tampered_config_is_refused(original: Path, tmp_path: Path) -> None:
    data = json.loads(original.read_text())
    data["config"]["workload"]["batch_size"] += 1  # config_hash left as it was
    bad = tmp_path / "result.json"
    bad.write_text(json.dumps(data))
    with pytest.raises(ConfigError) as exc:
        rr.plan(bad)
    msg = str(exc.value)
    assert "\n" not in msg and str(bad) in msg and data["config_hash"] in msg
    assert "does not match" in msg


def test_plan_keeps_config_and_seeds_and_defaults_to_the_original_runtime(
        original: Path) -> None:
    p = rr.plan(original)
    orig = ExperimentResult.model_validate_json(original.read_text())
    assert p.runtime == "local" and p.image is None and not p.notes
    base = p.loaded.study.base
    assert base.config_hash() == orig.config_hash
    assert envdiff.seeds(base) == {"decoding.seed": 7, "workload.seed": 11,
                                   "workload.traffic.seed": 5}
    assert p.loaded.provenance == orig.config_provenance
    assert p.loaded.study.study.cycles == 1
    # this host is the one that made it: nothing the host can know differs
    assert p.before.same, p.before.differences
    assert {"runtime", "device", "host.cpu_count", "packages.torch"} <= set(p.before.compared)


def test_local_rerun_of_an_image_result_says_the_digest_is_not_applied(
        tmp_path: Path) -> None:
    p = rr.plan(_docker_original(tmp_path), runtime="local")
    assert p.image is None and not p.digest_applied
    (note,) = p.notes
    assert DIGEST in note and "not applied" in note
    diffs = {d.key: d for d in p.before.differences}
    assert (diffs["runtime"].original, diffs["runtime"].now) == ("docker", "local")
    assert diffs["image_digest"].original == DIGEST and diffs["image_digest"].now is None
    assert diffs["packages.torch"].original == "2.4.0"  # the factory's, not this venv's


def test_container_runtime_needs_a_digest(original: Path) -> None:
    with pytest.raises(ConfigError, match="no digest to run on docker.*--runtime local"):
        rr.plan(original, runtime="docker")
    with pytest.raises(ConfigError, match="--runtime: 'auto' cannot rerun"):
        rr.plan(original, runtime="auto")


# -------------------------------------------------------------- image by digest


class _Image:
    def __init__(self, image_id: str) -> None:
        self.id = image_id
        self.attrs: dict = {}


class _Images:
    """The two calls the digest check makes, over a set of local refs and registry refs."""

    def __init__(self, local: dict[str, _Image], registry: set[str]) -> None:
        self.local, self.registry, self.asked = local, registry, []

    def get(self, ref: str) -> _Image:
        from docker.errors import ImageNotFound

        if ref in self.local:
            return self.local[ref]
        raise ImageNotFound(f"No such image: {ref}")

    def get_registry_data(self, ref: str, auth_config: dict | None = None) -> object:
        from docker.errors import NotFound

        self.asked.append(ref)
        if ref in self.registry:
            return object()
        raise NotFound("manifest unknown")


class _Client:
    def __init__(self, local: dict[str, _Image] | None = None,
                 registry: set[str] | None = None) -> None:
        self.images = _Images(local or {}, registry or set())


def test_digest_found_locally_runs_that_digest(tmp_path: Path) -> None:
    client = _Client(local={f"{REPO}@{DIGEST}": _Image("sha256:" + "1" * 64)})
    p = rr.plan(_docker_original(tmp_path), docker_client=client)
    assert p.runtime == "docker" and p.image == f"{REPO}@{DIGEST}" and p.digest_applied
    assert p.image_source == "here"
    assert client.images.asked == []  # no registry round trip when it is here
    assert any("inside the image" in u for u in p.before.unknown)
    assert not any(k.startswith("packages.") for k in p.before.compared)


def test_digest_only_in_the_registry_is_pulled_by_digest(tmp_path: Path) -> None:
    client = _Client(registry={f"{REPO}@{DIGEST}"})
    p = rr.plan(_docker_original(tmp_path), docker_client=client)
    assert p.image == f"{REPO}@{DIGEST}"
    assert client.images.asked == [f"{REPO}@{DIGEST}"]
    assert p.image_source == "in docker.io, pulled by digest"


def test_loaded_image_is_found_by_its_id(tmp_path: Path) -> None:
    """After `docker load` the harness records the image id as the digest."""
    client = _Client(local={DIGEST: _Image(DIGEST)})
    p = rr.plan(_docker_original(tmp_path), docker_client=client)
    assert (p.image, p.image_source) == (DIGEST, "here, by image id")


def test_digest_nowhere_is_refused_in_one_line(tmp_path: Path) -> None:
    # a tag of the same name here is not enough: it may have moved
    client = _Client(local={ENVIRONMENT["image_ref"]: _Image("sha256:" + "2" * 64)})
    with pytest.raises(ConfigError) as exc:
        rr.plan(_docker_original(tmp_path), docker_client=client)
    msg = str(exc.value)
    assert "\n" not in msg and f"{REPO}@{DIGEST}" in msg and "neither on this host" in msg
    assert "manifest unknown" in msg


def test_no_daemon_is_a_one_line_runtime_error(tmp_path: Path,
                                                monkeypatch: pytest.MonkeyPatch) -> None:
    from llem.runtimes.base import RuntimeUnavailable

    monkeypatch.setenv("DOCKER_HOST", f"unix://{tmp_path}/no.sock")
    with pytest.raises(RuntimeUnavailable, match="cannot reach the Docker daemon"):
        rr.plan(_docker_original(tmp_path))


def test_the_runtime_gets_the_pinned_image_and_the_config_stays(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    from llem.study import execute

    client = _Client(local={f"{REPO}@{DIGEST}": _Image("sha256:" + "1" * 64)})
    p = rr.plan(_docker_original(tmp_path), docker_client=client)
    seen = {}
    monkeypatch.setattr(execute, "make_runtime",
                        lambda name, **kw: seen.update(name=name, **kw) or "rt")
    assert rr.make_runtime(p) == "rt"
    assert seen == {"name": "docker", "backend": "pytorch", "image": f"{REPO}@{DIGEST}",
                    "pull_policy": "missing"}
    assert p.loaded.study.base.runtime == p.original.config.runtime


# ------------------------------------------------------------------------ the run


def test_rerun_runs_the_same_config_into_a_new_study(original: Path, tmp_path: Path) -> None:
    p = rr.plan(original)
    results = tmp_path / "results"
    out = rr.execute(p, results, console=Console(quiet=True), quiet=True)
    assert out.exit_code == 0 and not out.mismatches
    assert out.study_dir is not None and out.study_dir.parent == results
    assert out.study_dir != original.parents[2]
    (new,) = out.results
    orig = p.original
    assert new.config_hash == orig.config_hash and new.study_id != orig.study_id
    assert envdiff.seeds(new.config) == envdiff.seeds(orig.config)
    assert new.environment.image_digest is None and new.environment.runtime == "local"
    # full comparison of the environment: every field of both sides, same machine here
    after = out.after[new.run_id]
    assert {"host.hostname", "packages.torch", "runtime"} <= set(after.compared)
    assert all(not d.key.startswith(("packages.", "host.")) for d in after.differences)
    record = json.loads((out.study_dir / rr.RERUN_FILE).read_text())
    assert record["original"] == str(original.resolve())
    assert record["config_hash"] == orig.config_hash
    assert record["seeds"]["workload.seed"] == 11 and record["image_digest_applied"] is False
    # the original's side of --compare: both cycles of its configuration
    a, where = rr.original_runs(p)
    assert len(a) == 2 and "2 run(s)" in where
    rows = {r.key: r for r in rr.compare_metrics(a, out.results, ["tokens_per_s",
                                                                  "energy_per_token"])}
    tps = rows["tokens_per_s"].comparison
    assert tps is not None and (tps.n_a, tps.n_b) == (2, 1)
    assert tps.mean_b == pytest.approx(new.throughput.output_tokens_per_s)
    assert rows["energy_per_token"].comparison is None  # CPU host: no energy source
    assert (rows["energy_per_token"].reason or "").startswith("original: no energy source")


def test_mismatches_name_what_differs(tmp_path: Path) -> None:
    client = _Client(local={f"{REPO}@{DIGEST}": _Image("sha256:" + "1" * 64)})
    p = rr.plan(_docker_original(tmp_path), docker_client=client)
    same = p.original
    other = make_result(set={"environment.image_digest": "sha256:" + "cd" * 32})
    assert rr.mismatches(p, [same]) == []
    (line,) = rr.mismatches(p, [other])
    assert "image digest sha256:cdcd" in line


def test_compare_uses_the_bootstrap_when_both_sides_have_cycles(tmp_path: Path) -> None:
    study = make_study(tmp_path / "a", batch_sizes=(4,), cycles=5)
    b = make_study(tmp_path / "b", batch_sizes=(4,), cycles=5)
    p = rr.plan(next(study.glob("*/cycle-0/result.json")), runtime="local")
    a, where = rr.original_runs(p)
    assert len(a) == 5 and study.name in where
    from llem.results.io import load_results

    rows = rr.compare_metrics(a, load_results(b)[0], ["energy_per_token"])
    c = rows[0].comparison
    assert c is not None and c.ci is not None and c.ci.low <= c.ratio <= c.ci.high
    with pytest.raises(ConfigError, match="unknown metric"):
        rr.compare_metrics(a, a, ["joules"])


def test_podman_gets_the_digest_reference_and_cycles_repeat(tmp_path: Path) -> None:
    p = rr.plan(_docker_original(tmp_path), runtime="podman", cycles=3,
                docker_client=object())  # never asked: podman resolves the digest itself
    assert (p.runtime, p.image) == ("podman", f"{REPO}@{DIGEST}")
    assert p.loaded.study.study.cycles == 3 and p.loaded.is_study
    assert p.loaded.study.base.config_hash() == p.original.config_hash
