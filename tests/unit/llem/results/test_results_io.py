"""Finding and reading results: migration, validation and one-line errors naming the file."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from llem.results import io as results_io
from llem_schema.errors import ConfigError
from tests.factories import make_result, make_study, result_dict, write_result


def test_load_result_round_trip(tmp_path: Path) -> None:
    r = make_result()
    write_result(tmp_path / "run", r)
    assert results_io.load_result(tmp_path / "run") == r
    assert results_io.load_result(tmp_path / "run" / "result.json") == r


def test_fast_and_general_paths_read_the_same_result(tmp_path: Path, monkeypatch) -> None:
    """Current-version files take pydantic's JSON parser; the result is the one the general
    path (json + migrate + validate) gives, and an older document still migrates."""
    from llem_schema.result import ExperimentResult

    f = write_result(tmp_path / "run", make_result())
    fast = results_io.load_result(f)
    general = ExperimentResult.model_validate(json.loads(f.read_text()))
    assert fast == general
    # current version: the migration steps are not run at all
    seen: list[str] = []
    monkeypatch.setitem(results_io.migrate.__globals__["MIGRATIONS"], 1,
                        lambda d: seen.append(d["schema_version"]) or d)
    assert results_io.load_result(f) == fast and seen == []
    # a "1.0" marker nested in free-form config.extra must not skip the version check
    d = result_dict()
    d["schema_version"] = "0.9"
    d["config"]["extra"] = {"schema_version": "1.0"}
    with pytest.raises(ConfigError, match="no migration registered from major 0"):
        results_io.load_result(write_result(tmp_path / "old", d))


def test_newer_major_is_refused_with_the_migration_message(tmp_path: Path) -> None:
    d = result_dict()
    d["schema_version"] = "2.0"
    f = write_result(tmp_path / "run", d)
    with pytest.raises(results_io.ResultError) as exc:
        results_io.load_result(f)
    msg = str(exc.value)
    assert str(f) in msg and "newer" in msg and "upgrade" in msg and "\n" not in msg


@pytest.mark.parametrize(
    ("content", "expected"),
    [
        ("{not json", "not valid JSON"),
        ("[1, 2]", "expected a JSON object"),
        (json.dumps({"status": "ok"}), "no schema_version"),
    ],
)
def test_bad_files_give_one_line_naming_the_file(tmp_path: Path, content: str,
                                                 expected: str) -> None:
    f = tmp_path / "result.json"
    f.write_text(content)
    with pytest.raises(ConfigError, match=expected) as exc:
        results_io.load_result(f)
    assert str(f) in str(exc.value) and "\n" not in str(exc.value)


def test_invalid_result_names_the_field(tmp_path: Path) -> None:
    d = result_dict()
    d["energy"]["total_j"] = None  # null without a reason
    f = write_result(tmp_path / "run", d)
    with pytest.raises(ConfigError, match=r"invalid result at energy: .*null without a reason"):
        results_io.load_result(f)
    with pytest.raises(ConfigError, match="no result"):
        results_io.load_result(tmp_path / "missing")


def test_find_studies_and_status(tmp_path: Path) -> None:
    study = make_study(tmp_path, cycles=2)
    (study / "e999-deadbeef" / "cycle-0").mkdir(parents=True)  # pending run
    single = tmp_path / "quick-20260102-000000"
    write_result(single / "e000-x" / "cycle-0", make_result())
    (tmp_path / "notes").mkdir()  # not a study
    infos = {s.study_id: s for s in results_io.find_studies(tmp_path)}
    assert set(infos) == {study.name, single.name}
    s = infos[study.name]
    assert (s.kind, s.experiments, s.runs_done, s.runs_total, s.status) == (
        "study", 4, 6, 7, "incomplete")
    q = infos[single.name]
    assert (q.kind, q.runs_done, q.status) == ("run", 1, "complete")
    with pytest.raises(ConfigError, match="no such results directory"):
        results_io.find_studies(tmp_path / "nope")


def test_resolve_by_id_prefix_path_and_typo(tmp_path: Path) -> None:
    study = make_study(tmp_path, "sweep-20260101-120000", cycles=1)
    make_study(tmp_path, "sweep-20260105-120000", cycles=1)
    assert results_io.resolve("sweep-20260101", tmp_path) == study
    assert results_io.resolve(str(study), tmp_path) == study
    with pytest.raises(ConfigError, match="ambiguous"):
        results_io.resolve("sweep", tmp_path)
    with pytest.raises(ConfigError, match="did you mean"):
        results_io.resolve("sweep-20260101-120001", tmp_path)


def test_iter_results_skips_pending_and_reports_invalid(tmp_path: Path) -> None:
    study = make_study(tmp_path, batch_sizes=(1, 2), cycles=2)
    (study / "e000-x" / "cycle-0").mkdir(parents=True)  # pending: no result
    bad = study / "e001-y" / "cycle-0"
    bad.mkdir(parents=True)
    (bad / "result.json").write_text("{")
    with pytest.raises(ConfigError, match="not valid JSON"):
        results_io.load_results(study)
    results, errors = results_io.load_results(study, skip_invalid=True)
    assert len(results) == 4 and len(errors) == 1 and str(bad) in errors[0]
    assert [(r.experiment_id, r.cycle) for r in results] == sorted(
        (r.experiment_id, r.cycle) for r in results)
