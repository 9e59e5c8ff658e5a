"""The study's state on disk (issue 15): an append-only journal, O(1) per finished run, a
snapshot rebuilt only at pass ends, result checksums, and recovery from the run
directories when the manifest is lost. Studies here run for real through the local runtime
with tests/fixtures/fake_harness.py as the harness (schema-valid results in milliseconds)."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from rich.console import Console

from llem.config.loader import LoadedConfig
from llem.runtimes.local import LocalRuntime
from llem.study import manifest as mf
from llem.study.runner import run_study
from llem_schema.study import StudyConfig

FAKE = str(Path(__file__).resolve().parents[3] / "fixtures" / "fake_harness.py")


def loaded(n_sizes: int, cycles: int = 1) -> LoadedConfig:
    cfg = StudyConfig.model_validate({
        "name": "j",
        "base": {"model": "builtin:tiny-llama", "runtime": {"runtime": "local"}},
        "sweep": {"workload.batch_size": list(range(1, n_sizes + 1))},
        "study": {"cycles": cycles},
    })
    return LoadedConfig(study=cfg, is_study=True, source="study.yaml")


def run(ld: LoadedConfig, results: Path, **kw: object) -> int:
    return run_study(ld, results, quiet=True, console=Console(quiet=True),
                     runtime_factory=lambda: LocalRuntime(python=FAKE),
                     batch_python=FAKE, **kw)  # type: ignore[arg-type]


@pytest.fixture(autouse=True)
def counter(fake_counter) -> Path:
    return fake_counter(0)


def the_study(results: Path) -> Path:
    (d,) = [p for p in results.iterdir() if p.is_dir()]
    return d


def manifest_writes(monkeypatch: pytest.MonkeyPatch) -> list[Path]:
    """Every write of a manifest.json snapshot during the test."""
    seen: list[Path] = []
    real = mf.atomic_write_json

    def spy(path: Path, data: object) -> None:
        if Path(path).name == mf.MANIFEST_FILE:
            seen.append(Path(path))
        real(path, data)

    monkeypatch.setattr(mf, "atomic_write_json", spy)
    return seen


def test_snapshot_writes_do_not_grow_with_the_number_of_runs(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """A run's state change is one journal line; the snapshot is written a fixed number of
    times per study (creation, pass end, study end), not once per run."""
    writes = manifest_writes(monkeypatch)
    counts = []
    for n in (2, 8):
        writes.clear()
        assert run(loaded(n), tmp_path / f"r{n}") == 0
        counts.append(len(writes))
    assert counts[0] == counts[1], counts


def test_every_state_change_is_one_journal_line_and_the_end_folds_it(tmp_path: Path) -> None:
    assert run(loaded(3), tmp_path / "r") == 0
    study = the_study(tmp_path / "r")
    m = mf.load_manifest(study)
    assert [r.state for r in m.runs] == ["done"] * 3
    for r in m.runs:  # the checksum is of the result that finished
        assert r.result_sha256 == mf.result_checksum(study / r.run_dir)
    # folded into the snapshot at the end of the study: nothing left to replay
    assert not (study / mf.JOURNAL_FILE).exists() or (study / mf.JOURNAL_FILE).stat().st_size == 0


def test_the_journal_is_replayed_over_the_snapshot_and_a_torn_line_skipped(
        tmp_path: Path) -> None:
    ld = loaded(2)
    from llem.study.runner import plan_runs

    study = tmp_path / "s"
    runs = plan_runs(ld)
    mf.create(study, "s", ld.study, runs)
    entry = runs[1].model_copy(update={"state": "failed", "attempts": 1, "message": "boom"})
    mf.write_state(study, entry)
    with open(study / mf.JOURNAL_FILE, "ab") as f:
        f.write(b'{"run_id": "e000-x/cycle-0", "state": "do')  # a crash mid-append
    snapshot = json.loads((study / mf.MANIFEST_FILE).read_text())
    assert [r["state"] for r in snapshot["runs"]] == ["pending", "pending"]
    m = mf.load_manifest(study)
    assert [r.state for r in m.runs] == ["pending", "failed"]
    assert m.runs[1].message == "boom"
    assert len(mf.read_journal(study)) == 1


def test_a_lost_manifest_is_recovered_from_the_run_directories(tmp_path: Path) -> None:
    assert run(loaded(2, cycles=2), tmp_path / "r") == 0
    study = the_study(tmp_path / "r")
    before = mf.load_manifest(study)
    (study / mf.MANIFEST_FILE).unlink()
    (study / mf.JOURNAL_FILE).unlink(missing_ok=True)
    after = mf.recover(study)
    assert [(r.run_dir, r.state) for r in after.runs] == [(r.run_dir, "done") for r in before.runs]
    assert after.study_hash == before.study_hash
    assert (study / mf.MANIFEST_FILE).is_file()


def test_a_damaged_result_makes_its_run_pending_again_on_verify(tmp_path: Path) -> None:
    assert run(loaded(2), tmp_path / "r") == 0
    study = the_study(tmp_path / "r")
    m = mf.load_manifest(study)
    victim = study / m.runs[0].run_dir / "result.json"
    victim.write_bytes(victim.read_bytes()[:-40])  # cut short after the run finished
    assert [r.state for r in mf.rebuild(study, m).runs] == ["done", "done"]  # no verify
    fresh = mf.rebuild(study, m, verify=True)
    assert [r.state for r in fresh.runs] == ["pending", "done"]
    assert "damaged" in (fresh.runs[0].message or "")
    # the correction is written to the run's own state, so every later reader agrees
    assert mf.read_state(study, m.runs[0]).state == "pending"


def test_a_study_is_created_whole_or_not_at_all(tmp_path: Path,
                                                monkeypatch: pytest.MonkeyPatch) -> None:
    """Killed between study.json and the first snapshot (here: interrupted there), no
    directory is left; one abandoned by a dead launcher's SIGKILL is swept by the next."""
    from llem.study.runner import plan_runs

    ld = loaded(2)
    results = tmp_path / "r"
    results.mkdir()
    dead = results / ".j-20260101-000000.999999999.creating"  # no such pid
    dead.mkdir()
    (dead / mf.STUDY_FILE).write_text("{}")
    real = mf.atomic_write_json

    def interrupted(path: Path, data: object) -> None:
        raise KeyboardInterrupt

    monkeypatch.setattr(mf, "atomic_write_json", interrupted)
    with pytest.raises(KeyboardInterrupt):
        mf.create(results / "j-1", "j-1", ld.study, plan_runs(ld))
    assert sorted(p.name for p in results.iterdir()) == []  # neither half-made nor abandoned
    monkeypatch.setattr(mf, "atomic_write_json", real)
    mf.create(results / "j-1", "j-1", ld.study, plan_runs(ld))
    assert sorted(p.name for p in (results / "j-1").iterdir()) == [mf.MANIFEST_FILE,
                                                                    mf.STUDY_FILE]
