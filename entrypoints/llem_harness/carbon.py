"""CO2e of a run from a grid carbon intensity: given in the config, or looked up offline in
the data CodeCarbon ships (never the network). The result records which source it used."""

from __future__ import annotations

import csv
import json
from pathlib import Path

from llem_schema.config import MeasurementConfig
from llem_schema.result import CarbonMetrics, EnergyMetrics

J_PER_KWH = 3.6e6
HOW = ("set measurement.carbon_intensity_g_per_kwh, or measurement.carbon_region to look "
       "it up in CodeCarbon's data")


class CarbonLookupError(LookupError):
    """The intensity could not be found; the message says why."""


def _data(name: str) -> str:
    """A file of CodeCarbon's packaged data, found without importing codecarbon (its
    ``__init__`` pulls in its trackers and their dependencies, none needed for a table)."""
    from importlib.util import find_spec

    spec = find_spec("codecarbon")
    if spec is None or not spec.submodule_search_locations:
        raise CarbonLookupError("codecarbon is not installed (pip install "
                                "'llenergymeasure[codecarbon]') to look regions up")
    path = Path(next(iter(spec.submodule_search_locations))) / "data" / name
    try:
        return path.read_text("utf-8-sig")
    except OSError as exc:
        raise CarbonLookupError(f"CodeCarbon's data file {path} is unreadable: "
                                f"{exc.strerror or exc}") from exc


def lookup(region: str) -> tuple[float, str]:
    """(g CO2e/kWh, source) for a country code or a cloud region."""
    if len(region) == 3 and region.isalpha():
        mix = json.loads(_data("private_infra/global_energy_mix.json"))
        entry = mix.get(region.upper())
        if entry and entry.get("carbon_intensity") is not None:
            year = entry.get("year")
            return float(entry["carbon_intensity"]), (
                f"codecarbon:private_infra/global_energy_mix.json:{region.upper()}"
                + (f" ({year})" if year else ""))
    provider, _, name = region.rpartition(":")
    for row in csv.DictReader(_data("cloud/impact.csv").splitlines()):
        if row.get("region") == name and (not provider or row.get("provider") == provider):
            return float(row["impact"]), f"codecarbon:cloud/impact.csv:{row['provider']}:{name}"
    raise CarbonLookupError(f"measurement.carbon_region '{region}' is neither a country code "
                            "nor a cloud region in CodeCarbon's data")


def carbon_metrics(m: MeasurementConfig, energy: EnergyMetrics, out_tokens: int
                   ) -> CarbonMetrics:
    try:
        if m.carbon_intensity_g_per_kwh is not None:
            g_per_kwh, source = m.carbon_intensity_g_per_kwh, "config"
        elif m.carbon_region:
            g_per_kwh, source = lookup(m.carbon_region)
        else:
            return CarbonMetrics.unavailable(f"no carbon intensity: {HOW}")
    except CarbonLookupError as exc:
        return CarbonMetrics.unavailable(str(exc))
    if energy.total_j is None:
        return CarbonMetrics.unavailable(energy.null_reasons.get("total_j", "no energy"),
                                         intensity_g_per_kwh=g_per_kwh, source=source)
    grams = energy.total_j / J_PER_KWH * g_per_kwh
    adjusted = (energy.adjusted_j / J_PER_KWH * g_per_kwh
                if energy.adjusted_j is not None else None)
    vals = dict(intensity_g_per_kwh=g_per_kwh, source=source, emissions_g=grams,
                emissions_adjusted_g=adjusted,
                per_output_token_g=grams / out_tokens if out_tokens else None)
    reasons = {k: energy.null_reasons.get("adjusted_j", "no baseline") if k.startswith(
        "emissions_adjusted") else "no output tokens" for k, v in vals.items() if v is None}
    return CarbonMetrics(null_reasons=reasons, **vals)
