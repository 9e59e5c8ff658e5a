"""gpu_validation: the alternation order, the midway peer run and the peer table."""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parents[3] / "benchmarks"))
import gpu_validation
import validation_report


class FakeWorker:
    """Answers every segment with a fixed throughput and records the order of calls."""

    def __init__(self, name: str, tok_per_s: float, calls: list[str]) -> None:
        self.name, self.tok_per_s, self.calls = name, tok_per_s, calls

    def ask(self, **req: Any) -> dict[str, Any]:
        self.calls.append(req.get("setting", self.name))
        return {"tok_per_s": self.tok_per_s, "j_per_token": 1000 / self.tok_per_s}


def test_rounds_alternate_and_the_peer_runs_midway() -> None:
    calls: list[str] = []
    bares = {"bare": FakeWorker("bare", 100.0, calls),
             "bare-tf4": FakeWorker("bare-tf4", 125.0, calls)}
    llem = FakeWorker("llem", 98.0, calls)
    rows = gpu_validation.alternate(bares, llem, 8, 4, 1.0, ["default"],  # type: ignore[arg-type]
                                    midway=lambda b: calls.append(f"peer-{b}"))
    assert calls == ["bare", "bare-tf4", "default", "default", "bare", "bare-tf4",
                     "peer-8",
                     "bare", "bare-tf4", "default", "default", "bare", "bare-tf4"]
    (row,) = rows
    assert row["throughput_ratio"] == 0.98
    assert row["bare_tf4_tok_per_s"] == 125.0
    assert len(row["segments"]["bare-tf4"]) == 4


def test_peer_table_takes_the_median_of_a_batch_and_shows_each_side() -> None:
    parity = [{"batch": 8, "setting": "default", "llem_tok_per_s": 98.0,
               "bare_tok_per_s": 100.0, "bare_tf4_tok_per_s": 125.0}]
    peer = [{"batch": 8, "tok_per_s": 110.0}, {"batch": 8, "tok_per_s": 130.0},
            {"batch": 8, "tok_per_s": 120.0}]
    lines = validation_report._peer(peer, parity)
    row = next(line for line in lines if line.startswith("| 8 "))
    cells = [c.strip() for c in row.strip("|").split("|")]
    assert cells == ["8", "110.0, 130.0, 120.0", "98.0", "0.817", "0.833", "1.042"]
