"""UnderpassPonding: water over the lowest point of a sag underpass (下凹式立交桥) during rain.

A single storage: the catchment's runoff C·i·A flows to the sag; the pumps and drains take at
most the runoff of their design intensity, C·i_design·A; the rest ponds over the sag, whose
flooded area is taken as constant (a prism), so the level is the stored volume over that
area. Per step of length Δt (h), with R = catchment area / ponding area:

    h ← max(0, h + C·R·(rain_mm − i_design·Δt))        (h in mm; reported in cm)

Rain below the design intensity leaves spare pump capacity, which empties the pond at up to
C·R·(i_design − i) mm/h. No travel time to the sag and no surcharge from the sewer are
modelled: the level answers the rain at once and only fails by storage and capacity.

Defaults (*unverified*, chosen for the thresholds, not measured): design 35 mm/h (the
domain notes' 1–2-year drainage), runoff coefficient 0.9 (paved), R = 10 (e.g. 3 ha of
roads and ramps draining to a 150 m × 20 m sag). With them, an hour at 60 mm/h leaves
22.5 cm (over the 20 cm yellow line), an hour at 70 mm/h 31.5 cm (over the 27 cm red line).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

#: Lines painted above an underpass's lowest point (domain notes, section 3).
YELLOW_LINE_CM = 20.0
RED_LINE_CM = 27.0


@dataclass(frozen=True)
class UnderpassPonding:
    """A sag underpass's ponding response to rain; see the module docstring for the model."""

    design_mm_h: float = 35.0
    runoff_coeff: float = 0.9
    catchment_to_pond: float = 10.0

    def __post_init__(self) -> None:
        if self.design_mm_h < 0 or not 0 < self.runoff_coeff <= 1 or self.catchment_to_pond <= 0:
            raise ValueError(f"underpass parameters out of range: {self}")

    def levels_cm(self, rain_mm: Sequence[float], step_min: float, initial_cm: float = 0.0) -> list[float]:
        """Water level in cm above the lowest point at the end of each rain step (mm per step)."""
        if step_min <= 0:
            raise ValueError("step must be positive")
        capacity_mm = self.design_mm_h * step_min / 60.0
        gain = self.runoff_coeff * self.catchment_to_pond
        h_mm = initial_cm * 10.0
        out = []
        for mm in rain_mm:
            if mm < 0:
                raise ValueError(f"negative rain {mm}")
            h_mm = max(0.0, h_mm + gain * (mm - capacity_mm))
            out.append(h_mm / 10.0)
        return out
