"""Time to expand and validate a 10,000-point sweep (target < 1 s)."""

from __future__ import annotations

import time

from llem_schema.study import StudyConfig, expand_experiments

TARGET_S = 1.0


def main() -> None:
    study = StudyConfig(
        name="bench",
        base={"decoding": {"strategy": "sampling"}},  # a temperature needs sampling
        sweep={
            "workload.batch_size": list(range(1, 26)),
            "decoding.max_new_tokens": list(range(1, 21)),
            "decoding.temperature": [0.0, 0.5, 0.7, 1.0],
            "pytorch.dtype": ["float16", "bfloat16", "float32", "auto", "auto"][:5],
        },
    )
    n = study.n_experiments()
    best = float("inf")
    for _ in range(3):
        t0 = time.perf_counter()
        exps = expand_experiments(study)
        best = min(best, time.perf_counter() - t0)
    assert len(exps) == n
    print(f"expanded + validated {n} experiments in {best:.3f}s (best of 3)")
    print(f"target < {TARGET_S}s: ratio {best / TARGET_S:.2f} -> "
          f"{'PASS' if best < TARGET_S else 'FAIL'}")


if __name__ == "__main__":
    main()
