"""The metric registry: one table of the metrics llem reports, with names, units, how to
read each from a result, why it may be null, and which direction is better. ``results
show``, ``compare``, ``pareto``, ``plot`` and ``export`` all take their metrics from here."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

from llem_schema.result import ExperimentResult


@dataclass(frozen=True)
class MetricDef:
    """One reported metric: how to read it from a result and why it may be null."""

    key: str
    label: str
    unit: str
    get: Callable[[ExperimentResult], float | None]
    reason: Callable[[ExperimentResult], str | None]
    higher_is_better: bool
    column: str  # the flattened export column holding it
    #: in ``results show`` without -m; off for what another metric states better
    shown_by_default: bool = True


def _lat(name: str) -> Callable[[ExperimentResult], float | None]:
    def get(r: ExperimentResult) -> float | None:
        d = getattr(r.latency, name)
        return None if d is None else d.p50

    return get


def _adjusted_per_output_token(r: ExperimentResult) -> float | None:
    """Energy above the idle baseline per output token: what the work itself cost. Gross
    per-token energy includes idle power, which at small batches is most of it."""
    tokens = r.throughput.output_tokens
    return r.energy.adjusted_j / tokens if r.energy.adjusted_j is not None and tokens else None


def _adjusted_reason(r: ExperimentResult) -> str | None:
    return r.energy.null_reasons.get("adjusted_j") or r.energy.null_reasons.get(
        "baseline_power_w")


def _decode_tokens(r: ExperimentResult) -> int | None:
    """Tokens the decode phase produced: each request's output tokens but its first (the
    prefill forward makes that one). The harness counts them so from schema 1.2; a result
    before it (1.0, 1.1) counted every output token, so one token per request comes off."""
    tokens, requests = r.decode.tokens, r.throughput.num_requests
    if tokens is None:
        return None
    try:
        minor = int(r.schema_version.split(".")[1])
    except (IndexError, ValueError):
        minor = 2
    if minor < 2 and requests and tokens == r.throughput.output_tokens:
        return max(tokens - requests, 0)
    return tokens


def _phase_tokens(r: ExperimentResult, phase: str) -> int | None:
    return r.prefill.tokens if phase == "prefill" else _decode_tokens(r)


def _phase_per_token(phase: str) -> Callable[[ExperimentResult], float | None]:
    """A phase's gross energy per token: prefill per input token (its own window, per
    pass), decode per decode token (the measured window less the passes' prefill)."""

    def get(r: ExperimentResult) -> float | None:
        energy, tokens = getattr(r, phase).energy_j, _phase_tokens(r, phase)
        return energy / tokens if energy is not None and tokens else None

    return get


def _phase_adjusted(phase: str) -> Callable[[ExperimentResult], float | None]:
    """A phase's energy above idle per token: (phase energy - baseline power x phase
    seconds) / phase tokens, the per-phase counterpart of energy_per_token_adjusted."""

    def get(r: ExperimentResult) -> float | None:
        p, watts = getattr(r, phase), r.energy.baseline_power_w
        tokens = _phase_tokens(r, phase)
        if p.energy_j is None or p.time_s is None or watts is None or not tokens:
            return None
        return (p.energy_j - watts * p.time_s) / tokens

    return get


def _phase_reason(phase: str) -> Callable[[ExperimentResult], str | None]:
    def reason(r: ExperimentResult) -> str | None:
        p = getattr(r, phase)
        return (p.null_reasons.get("energy_per_token_j") or p.null_reasons.get("energy_j")
                or p.null_reasons.get("tokens") or p.null_reasons.get("time_s")
                or ("no tokens in this phase" if _phase_tokens(r, phase) == 0 else None))

    return reason


def _phase_adjusted_reason(phase: str) -> Callable[[ExperimentResult], str | None]:
    """No baseline first (the reason the total adjusted metric gives), then the phase's."""
    phase_reason = _phase_reason(phase)

    def reason(r: ExperimentResult) -> str | None:
        if r.energy.baseline_power_w is None:
            return _adjusted_reason(r) or "no idle baseline measured"
        return phase_reason(r)

    return reason


def _flops_per_joule(r: ExperimentResult) -> float | None:
    """FLOPs of the measured window over its energy: both cover the same passes."""
    flops, joules = r.flops.total, r.energy.total_j
    return flops / joules if flops is not None and joules else None


def _flops_per_joule_reason(r: ExperimentResult) -> str | None:
    if r.flops.total is None:
        return r.flops.null_reasons.get("total") or "FLOPs not counted"
    return r.energy.null_reasons.get("total_j")


def _energy_per_pass(r: ExperimentResult) -> float | None:
    """The measured window's energy over its workload passes. The window repeats the
    workload until it spans min_window_seconds, so its total covers 2, 3 or 4 passes from one
    cycle to the next; averaging totals would mix those counts, per pass it does not."""
    joules, passes = r.energy.total_j, r.setup.measured_passes
    return joules / passes if joules is not None and passes else None


def _tokens_per_joule(r: ExperimentResult) -> float | None:
    tokens, joules = r.throughput.output_tokens, r.energy.total_j
    return tokens / joules if tokens and joules else None


METRICS: dict[str, MetricDef] = {
    m.key: m
    for m in (
        MetricDef("energy_per_token", "energy / output token", "J",
                  lambda r: r.energy.per_output_token_j,
                  lambda r: r.energy.null_reasons.get("per_output_token_j"), False,
                  "energy.per_output_token_j"),
        MetricDef("tokens_per_s", "output tokens / s", "tok/s",
                  lambda r: r.throughput.output_tokens_per_s,
                  lambda r: r.throughput.null_reasons.get("output_tokens_per_s"), True,
                  "throughput.output_tokens_per_s"),
        MetricDef("ttft_p50", "TTFT p50", "s", _lat("ttft"),
                  lambda r: r.latency.null_reasons.get("ttft"), False, "latency.ttft.p50_s"),
        MetricDef("itl_p50", "ITL p50", "s", _lat("itl"),
                  lambda r: r.latency.null_reasons.get("itl"), False, "latency.itl.p50_s"),
        MetricDef("energy_per_pass", "energy / workload pass", "J", _energy_per_pass,
                  lambda r: r.energy.null_reasons.get("total_j"), False,
                  "energy.per_pass_j"),
        MetricDef("total_energy", "window total energy (all passes)", "J",
                  lambda r: r.energy.total_j, lambda r: r.energy.null_reasons.get("total_j"),
                  False, "energy.total_j", shown_by_default=False),
        MetricDef("energy_per_token_adjusted", "idle-adjusted energy / output token", "J",
                  _adjusted_per_output_token, _adjusted_reason, False,
                  "energy.adjusted_per_output_token_j"),
        MetricDef("tokens_per_joule", "output tokens / J", "tok/J", _tokens_per_joule,
                  lambda r: r.energy.null_reasons.get("total_j"), True,
                  "energy.output_tokens_per_j"),
        MetricDef("prefill_energy_per_token", "prefill energy / input token", "J",
                  _phase_per_token("prefill"), _phase_reason("prefill"), False,
                  "prefill.energy_per_token_j", shown_by_default=False),
        MetricDef("decode_energy_per_token", "decode energy / decode token", "J",
                  _phase_per_token("decode"), _phase_reason("decode"), False,
                  "decode.energy_per_decode_token_j", shown_by_default=False),
        MetricDef("prefill_energy_per_token_adjusted",
                  "idle-adjusted prefill energy / input token", "J",
                  _phase_adjusted("prefill"), _phase_adjusted_reason("prefill"), False,
                  "prefill.adjusted_energy_per_token_j", shown_by_default=False),
        MetricDef("decode_energy_per_token_adjusted",
                  "idle-adjusted decode energy / decode token", "J",
                  _phase_adjusted("decode"), _phase_adjusted_reason("decode"), False,
                  "decode.adjusted_energy_per_token_j", shown_by_default=False),
        MetricDef("flops_per_joule", "FLOPs / J", "FLOP/J", _flops_per_joule,
                  _flops_per_joule_reason, True, "flops.flops_per_j", shown_by_default=False),
    )
}

#: the energy per token a command shows by default: idle-adjusted where the results have
#: an idle baseline, gross otherwise (:func:`llem.results.compare.choose_energy_metric`)
ENERGY_GROSS = "energy_per_token"
ENERGY_ADJUSTED = "energy_per_token_adjusted"


def default_keys() -> list[str]:
    """The metrics ``results show`` lists when none is asked for."""
    return [k for k, m in METRICS.items() if m.shown_by_default]


def metric(key: str) -> MetricDef:
    """Look up a metric by key, with a one-line error listing the valid ones."""
    if key not in METRICS:
        from llem_schema.errors import ConfigError, did_you_mean

        raise ConfigError(f"unknown metric '{key}'{did_you_mean(key, list(METRICS))}; "
                          f"choose from {', '.join(METRICS)}")
    return METRICS[key]
