"""CO2e from a configured intensity or an offline lookup in CodeCarbon's packaged data; null
with a reason when neither is set (issue 17). The lookup is tested on a package laid out like
codecarbon's data directory, written here (codecarbon itself is an optional extra)."""

from __future__ import annotations

import json
import sys
from pathlib import Path

import pytest

from llem_harness.carbon import carbon_metrics, lookup
from llem_schema.config import MeasurementConfig
from llem_schema.result import EnergyMetrics


@pytest.fixture
def fake_codecarbon(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    pkg = tmp_path / "codecarbon"
    (pkg / "data/private_infra").mkdir(parents=True)
    (pkg / "data/cloud").mkdir(parents=True)
    # the real package's __init__ imports its trackers (rapidfuzz, psutil, ...): the lookup
    # must read the data without running it
    (pkg / "__init__.py").write_text("raise ImportError('codecarbon imported for a table')")
    (pkg / "data/private_infra/global_energy_mix.json").write_text(json.dumps(
        {"FRA": {"carbon_intensity": 56.0, "year": 2023}}))
    (pkg / "data/cloud/impact.csv").write_text(
        "\ufeffprovider,providerName,offsetRatio,region,regionName,country_name,countryIsoCode,"
        "state,city,impact,source,comment\n"
        "gcp,Google Cloud Platform,100,europe-west1,,Belgium,BEL,,St. Ghislain,103,x,\n")
    monkeypatch.syspath_prepend(str(tmp_path))
    monkeypatch.delitem(sys.modules, "codecarbon", raising=False)


def _energy(total: float | None, adjusted: float | None) -> EnergyMetrics:
    known = {k: v for k, v in (("total_j", total), ("adjusted_j", adjusted)) if v is not None}
    return EnergyMetrics.unavailable("no meter", **known)


def test_configured_intensity() -> None:
    c = carbon_metrics(MeasurementConfig(carbon_intensity_g_per_kwh=400.0),
                       _energy(3.6e6, 1.8e6), 1000)
    assert (c.emissions_g, c.emissions_adjusted_g, c.source) == (400.0, 200.0, "config")
    assert c.per_output_token_g == pytest.approx(0.4)


def test_country_and_cloud_region_lookups(fake_codecarbon: None) -> None:
    assert lookup("FRA") == (56.0, "codecarbon:private_infra/global_energy_mix.json:FRA (2023)")
    assert lookup("gcp:europe-west1")[0] == 103.0 and lookup("europe-west1")[0] == 103.0
    assert "codecarbon" not in sys.modules
    c = carbon_metrics(MeasurementConfig(carbon_region="fra"), _energy(7.2e6, None), 0)
    assert c.emissions_g == pytest.approx(112.0) and c.emissions_adjusted_g is None
    assert "no meter" in c.null_reasons["emissions_adjusted_g"]
    bad = carbon_metrics(MeasurementConfig(carbon_region="mars-1"), _energy(1.0, 1.0), 1)
    assert bad.emissions_g is None and "mars-1" in bad.null_reasons["emissions_g"]


def test_nothing_set_is_null_with_how_to_set_it() -> None:
    c = carbon_metrics(MeasurementConfig(), _energy(1.0, 1.0), 1)
    assert c.emissions_g is None and "carbon_intensity_g_per_kwh" in c.null_reasons["emissions_g"]
