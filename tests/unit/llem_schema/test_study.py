from __future__ import annotations

import pytest
from pydantic import ValidationError

from llem_schema.study import StudyConfig, StudyExecution, expand_experiments, order_runs


def test_grid_expansion_and_values() -> None:
    s = StudyConfig(
        name="s",
        sweep={"workload.batch_size": [1, 2, 4], "decoding.max_new_tokens": [8, 16, 32]},
    )
    exps = expand_experiments(s)
    assert len(exps) == 9 == s.n_experiments()
    combos = {(e.workload.batch_size, e.decoding.max_new_tokens) for e in exps}
    assert combos == {(b, m) for b in (1, 2, 4) for m in (8, 16, 32)}
    assert len({e.config_hash() for e in exps}) == 9
    # the base is not mutated by expansion
    assert s.base.workload.batch_size == 4


def test_bad_sweep_path_has_did_you_mean() -> None:
    with pytest.raises(ValidationError, match="did you mean 'batch_size'"):
        StudyConfig(sweep={"workload.batchsize": [1]})


def test_bad_sweep_value_fails_validation() -> None:
    s = StudyConfig(sweep={"workload.batch_size": [1, -1]})
    with pytest.raises(ValidationError):
        expand_experiments(s)


def test_orders() -> None:
    g = order_runs(2, StudyExecution(cycles=2, order="grouped"))
    i = order_runs(2, StudyExecution(cycles=2, order="interleaved"))
    s1 = order_runs(5, StudyExecution(cycles=3, order="shuffled", seed=1))
    s2 = order_runs(5, StudyExecution(cycles=3, order="shuffled", seed=1))
    assert g == [(0, 0), (0, 1), (1, 0), (1, 1)]
    assert i == [(0, 0), (1, 0), (0, 1), (1, 1)]
    assert s1 == s2 and sorted(s1) == sorted(order_runs(5, StudyExecution(cycles=3)))
