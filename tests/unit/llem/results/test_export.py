"""Export: one row per run in Parquet/CSV/JSON/HF dataset; aggregate writes study files."""

from __future__ import annotations

import json
from pathlib import Path

import pyarrow.csv as pcsv
import pyarrow.parquet as pq
import pytest

from llem.results import export, metrics, stats
from llem.results import io as results_io
from llem_schema.errors import ConfigError
from tests.factories import make_result, make_study


def test_flatten_has_ids_config_metrics_env() -> None:
    r = make_result(null={"latency.ttft": "offline: no streaming"})
    row = export.flatten_result(r)
    assert row["run_id"] == r.run_id and row["config_hash"] == r.config_hash
    assert row["config.workload.batch_size"] == r.config.workload.batch_size
    assert row["energy.total_j"] == r.energy.total_j
    assert row["latency.itl.p50_s"] == r.latency.itl.p50
    assert row["latency.ttft"] is None
    assert json.loads(row["latency.null_reasons"]) == {"ttft": "offline: no streaming"}
    assert row["env.gpu_name"] == "NVIDIA H100 80GB HBM3"
    assert row["env.image_digest"].startswith("sha256:")
    for d in metrics.METRICS.values():  # every summarised metric is an export column
        assert d.column in row or d.column.rsplit(".", 1)[0] in row


def test_parquet_round_trip_one_row_per_run(tmp_path: Path) -> None:
    study = make_study(tmp_path, batch_sizes=(1, 4), cycles=3)
    results, _ = results_io.load_results(study)
    out, n = export.export(results, "parquet", tmp_path / "x.parquet")
    table = pq.read_table(out)
    assert n == table.num_rows == 6
    assert sorted(table.column("run_id").to_pylist()) == sorted(r.run_id for r in results)
    assert table.column("config.workload.batch_size").to_pylist().count(4) == 3
    assert table.column("energy.per_output_token_j").to_pylist() == [
        r.energy.per_output_token_j for r in results]


def test_mixed_rows_keep_all_columns_and_types(tmp_path: Path) -> None:
    a = make_result()
    b = make_result(null={"latency.ttft": "none"}, set={"config.extra": {"k": [1, "x"]}})
    out, _ = export.export([a, b], "parquet", tmp_path / "m.parquet")
    t = pq.read_table(out)
    assert t.column("latency.ttft.p50_s").to_pylist() == [a.latency.ttft.p50, None]
    assert t.column("config.extra").to_pylist() == [None, '{"k": [1, "x"]}']


def test_csv_and_json(tmp_path: Path) -> None:
    rs = [make_result(cycle=c) for c in range(3)]
    out, _ = export.export(rs, "csv", tmp_path / "x.csv")
    assert pcsv.read_csv(out).num_rows == 3
    out, _ = export.export(rs, "json", tmp_path / "x.json")
    rows = json.loads(out.read_text())
    assert [r["cycle"] for r in rows] == [0, 1, 2]


def test_hf_dataset_folder(tmp_path: Path) -> None:
    rs = [make_result(cycle=c) for c in range(4)]
    out, n = export.export(rs, "hf-dataset", tmp_path / "ds", title="my study")
    files = sorted((out / "data").glob("train-*.parquet"))
    assert len(files) == 1 and pq.read_table(files[0]).num_rows == n == 4
    card = (out / "README.md").read_text()
    assert card.startswith("---\nconfigs:") and "path: data/train-*.parquet" in card
    assert "# my study" in card
    with pytest.raises(ConfigError, match="not empty"):
        export.export(rs, "hf-dataset", out)
    export.export(rs[:2], "hf-dataset", out, force=True)
    assert pq.read_table(out / "data" / "train-00000-of-00001.parquet").num_rows == 2


def test_bad_format_and_empty(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="did you mean 'parquet'"):
        export.export([make_result()], "parket", tmp_path / "x")
    with pytest.raises(ConfigError, match="nothing to export"):
        export.export([], "csv", tmp_path / "x.csv")


def test_aggregate_writes_parquet_and_summary(tmp_path: Path) -> None:
    study = make_study(tmp_path, batch_sizes=(1, 2, 8), cycles=5)
    rep = export.aggregate(study)
    assert (rep.n_results, rep.n_configs) == (15, 3)
    assert pq.read_table(study / "study.parquet").num_rows == 15
    summary = stats.StudySummary.model_validate_json((study / "summary.json").read_text())
    m = summary.configs[0].metrics["energy_per_token"]
    assert m.ci is not None and m.ci.method == "BCa" and m.n_valid == 5
    assert not list(study.glob(".*.tmp"))  # atomic writes leave no temp files
    assert export.load_summary(study).configs[0].config_hash == summary.configs[0].config_hash


def test_aggregate_refuses_invalid_unless_skipped(tmp_path: Path) -> None:
    study = make_study(tmp_path, batch_sizes=(1,), cycles=2)
    bad = study / "e009-bad" / "cycle-0"
    bad.mkdir(parents=True)
    (bad / "result.json").write_text('{"schema_version": "9.0"}')
    with pytest.raises(ConfigError, match="newer than this llem"):
        export.aggregate(study)
    rep = export.aggregate(study, skip_invalid=True)
    assert rep.n_results == 2 and len(rep.skipped) == 1
    summary = json.loads((study / "summary.json").read_text())
    assert any("skipped invalid result" in w for w in summary["warnings"])


def test_hf_dataset_loads_with_datasets_when_installed(tmp_path: Path) -> None:
    datasets = pytest.importorskip("datasets")  # not a dependency; checked when present
    rs = [make_result(cycle=c) for c in range(3)]
    out, _ = export.export(rs, "hf-dataset", tmp_path / "ds")
    ds = datasets.load_dataset("parquet", data_files=str(out / "data" / "train-*.parquet"),
                               split="train", cache_dir=str(tmp_path / "cache"))
    assert ds.num_rows == 3 and "config.workload.batch_size" in ds.column_names


def test_latency_columns_name_their_unit() -> None:
    row = export.flatten_result(make_result())
    lat = [k for k in row if k.startswith(("latency.ttft.", "latency.itl.", "latency.e2e."))]
    assert "latency.ttft.p50_s" in lat and "latency.e2e.max_s" in lat
    assert all(k.endswith("_s") for k in lat if not k.endswith(".n")), lat
    assert row["latency.itl.n"] == make_result().latency.itl.n  # a count: no unit


def test_every_registry_column_ends_in_its_units_suffix() -> None:
    row = export.flatten_result(make_result())
    for d in metrics.METRICS.values():
        assert d.column in row, d.key
        assert d.column.endswith(export.UNIT_SUFFIX[d.unit]), (d.column, d.unit)


def test_csv_whole_number_floats_read_back_as_float(tmp_path: Path) -> None:
    """A float column whose values are all whole numbers (joules, seconds) must not turn
    into int64 in pandas or Arrow: a later study with 101.5 J would not concatenate."""
    rs = [make_result(cycle=c, set={"energy.total_j": 100.0 + c, "energy.baseline_power_w": 60.0})
          for c in range(3)]
    out, _ = export.export(rs, "csv", tmp_path / "x.csv")
    arrow = pcsv.read_csv(out)
    assert str(arrow.schema.field("energy.total_j").type) == "double"
    assert str(arrow.schema.field("cycle").type) == "int64"
    pd = pytest.importorskip("pandas")
    df = pd.read_csv(out)
    assert df["energy.total_j"].dtype == "float64"
    assert df["energy.baseline_power_w"].dtype == "float64"
    assert list(df["energy.total_j"]) == [100.0, 101.0, 102.0]
    assert df["cycle"].dtype == "int64" and df["env.mig"].dtype == "bool"
    assert df["warnings"].isna().all()  # null stays empty, not the text "None"


def test_csv_keeps_text_with_commas_quotes_and_newlines(tmp_path: Path) -> None:
    r = make_result(set={"warnings": ['a, "quoted" one', "second\nline"]})
    out, _ = export.export([r], "csv", tmp_path / "w.csv")
    assert pcsv.read_csv(out).column("warnings").to_pylist() == [
        'a, "quoted" one\nsecond\nline']


def test_a_summary_written_before_a_metric_existed_is_rebuilt(tmp_path: Path) -> None:
    """summary.json from an older llem lacks energy_per_pass: `results show` would list
    it as null for every configuration although every result has the energy."""
    study = make_study(tmp_path, batch_sizes=(1, 2), cycles=2)
    results, _ = results_io.load_results(study)
    old = stats.summarise(results, metrics=[k for k in metrics.METRICS
                                            if k != "energy_per_pass"])
    (study / export.SUMMARY_JSON).write_text(old.model_dump_json())
    fresh = export.load_summary(study)
    assert fresh.configs[0].metrics["energy_per_pass"].mean is not None
    export.aggregate(study)  # a current summary.json is read as it is
    assert export.load_summary(study).generated_at == json.loads(
        (study / export.SUMMARY_JSON).read_text())["generated_at"]
