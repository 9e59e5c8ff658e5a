"""CodeCarbon as an energy source: last in ``auto``, for comparability with published work.

Each window runs one ``OfflineEmissionsTracker`` (no network: ``country_iso_code`` fixes
the grid region, which only affects the CO2 figure we do not use) and reads its final
``gpu_energy`` (kWh, summed over ``gpu_ids``) as joules.

Accuracy, by construction: CodeCarbon's GPU energy is the delta of the same NVML
total-energy counter, sampled every ``measure_power_secs`` plus once at ``start()`` and
``stop()``. Its window is therefore a little wider than ours (``start()`` and ``stop()``
each take tens of ms to hundreds of ms of set-up and book-keeping, at the power the GPU has
then) and CodeCarbon rounds nothing else; expect agreement with :mod:`.nvml` within
~1-2% on windows of several seconds, worse on sub-second windows. It reports no per-GPU
split, so ``per_device`` is False and the runner records ``per_gpu_j`` as null with a reason.
"""

from __future__ import annotations

import logging
import os
from importlib import metadata

from llem_harness.energy.base import EnergySource

KWH_TO_J = 3.6e6


class CodeCarbonEnergySource(EnergySource):
    name = "codecarbon"
    per_device = False

    @classmethod
    def available(cls, device_indices: list[int]) -> tuple[bool, str]:
        try:
            from codecarbon import OfflineEmissionsTracker  # noqa: F401
        except Exception as exc:
            return False, f"codecarbon not importable ({type(exc).__name__}: {exc})"
        try:
            import pynvml

            pynvml.nvmlInit()
        except Exception as exc:
            return False, f"codecarbon needs NVML for GPU energy ({type(exc).__name__}: {exc})"
        return True, ""

    def __init__(
        self,
        device_indices: list[int],
        measure_power_secs: float = 1.0,
        country_iso_code: str | None = None,
    ) -> None:
        self._indices = list(device_indices or [0])
        self._measure_power_secs = measure_power_secs
        self._country = country_iso_code or os.environ.get("LLEM_CODECARBON_COUNTRY", "USA")
        self._tracker = None
        logging.getLogger("codecarbon").setLevel(logging.ERROR)

    def version(self) -> str | None:
        try:
            return metadata.version("codecarbon")
        except metadata.PackageNotFoundError:
            return None

    def _make_tracker(self):
        from codecarbon import OfflineEmissionsTracker

        return OfflineEmissionsTracker(
            country_iso_code=self._country,
            gpu_ids=self._indices,
            measure_power_secs=self._measure_power_secs,
            tracking_mode="process",
            save_to_file=False,
            log_level="error",
            allow_multiple_runs=True,
        )

    def begin(self) -> None:
        self._tracker = self._make_tracker()
        self._tracker.start()

    def end(self) -> list[float]:
        tracker, self._tracker = self._tracker, None
        if tracker is None:
            raise RuntimeError("CodeCarbonEnergySource.end() without begin()")
        tracker.stop()
        data = tracker.final_emissions_data
        return [float(data.gpu_energy) * KWH_TO_J]
