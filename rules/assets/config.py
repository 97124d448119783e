"""The ``assets`` config section: registries, tag keys, asset types, tolerances and thresholds.

Defaults marked *project default* come from no public source (inspection intervals,
tolerances, tamper thresholds): a city should set its own.
"""

from __future__ import annotations

from importlib import resources
from pathlib import Path
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field, SecretStr, field_validator, model_validator

from gridsense.model.case import RoutingLevel
from gridsense.model.envelopes import AssetCondition

KeyState = Literal["sign", "verify", "retired"]
Role = Literal["maintainer", "inspector"]
_CATEGORY_REF = r"^(component|event):\d{4}$"


class _Section(BaseModel):
    model_config = ConfigDict(extra="forbid")


def _demo_file(name: str) -> Path:
    # Not gridsense.config.packaged: gridsense.config imports this module.
    return Path(str(resources.files("gridsense").joinpath("data", "demo", name)))


class TagKey(_Section):
    """One HMAC key of the tag key ring."""

    id: str = Field(
        pattern=r"^[A-Z0-9]{1,8}$",
        description="key id printed in every tag it signs (A-Z, 0-9: keeps the QR in alphanumeric mode)",
    )
    secret: SecretStr = Field(description="HMAC-SHA256 key; at least 32 characters of real randomness")
    state: KeyState = Field(
        default="verify",
        description="sign: signs new tags (exactly one); verify: old tags stay valid; retired: rejected",
    )

    @field_validator("secret")
    @classmethod
    def _long_enough(cls, v: SecretStr) -> SecretStr:
        if len(v.get_secret_value()) < 32:
            raise ValueError("a tag key needs at least 32 characters")
        return v


class AssetTypeConfig(_Section):
    """What a kind of asset is: its component codes, inspection interval and checks."""

    name_zh: str = Field(min_length=1, max_length=20, description="name on labels and cases")
    name_en: str = Field(min_length=1, max_length=40, description="English name")
    codes: list[str] = Field(
        min_length=1, description="component classes (major 2 + minor 2 digits) the type's codes may carry"
    )
    interval_h: float = Field(gt=0, le=8760, description="inspection interval when the grade sets none")
    grades: dict[str, float] = Field(
        default_factory=dict,
        description="protection grade → inspection interval in hours; empty = the type has no grades",
    )
    grade_required: bool = Field(default=False, description="every asset of the type must carry a grade")
    grade_routing: dict[str, RoutingLevel] = Field(
        default_factory=dict, description="grade → routing level of its cases (big matters go higher)"
    )
    tolerance_m: float = Field(
        default=25, ge=1, le=500, description="how far from the asset a scan may be, before GPS accuracy"
    )
    mobile: bool = Field(
        default=False,
        description="moves around (carts): checked against its permit's places and hours, not a fixed point",
    )
    conditions: list[AssetCondition] = Field(
        min_length=1, description="conditions a maintainer may report for the type ('ok' must be one)"
    )

    @model_validator(mode="after")
    def _consistent(self) -> AssetTypeConfig:
        for code in self.codes:
            if not (len(code) == 4 and code.isascii() and code.isdigit()):
                raise ValueError(f"component class {code!r} must be 4 digits (major + minor)")
        for grade, hours in self.grades.items():
            if not 0 < hours <= 8760:
                raise ValueError(f"grade {grade!r}: interval must be in (0, 8760] hours")
        if self.grade_required and not self.grades:
            raise ValueError("grade_required needs grades")
        unknown = set(self.grade_routing) - set(self.grades)
        if unknown:
            raise ValueError(f"grade_routing names unknown grades {sorted(unknown)}")
        if "ok" not in self.conditions:
            raise ValueError("'ok' must be an allowed condition")
        return self


def default_types() -> dict[str, AssetTypeConfig]:
    """The four QR-tagged kinds Xicheng runs; intervals and tolerances are project defaults."""
    return {
        "newsstand": AssetTypeConfig(
            name_zh="报刊亭",
            name_en="newsstand",
            codes=["0121"],
            interval_h=30 * 24,
            tolerance_m=30,
            conditions=["ok", "damaged", "missing_parts", "graffiti", "dirty", "other"],
        ),
        "ancient_tree": AssetTypeConfig(
            name_zh="古树名木",
            name_en="ancient tree",
            codes=["0401"],
            interval_h=90 * 24,
            grades={"一级": 30 * 24, "二级": 90 * 24},
            grade_required=True,
            grade_routing={"一级": "district"},
            tolerance_m=25,
            conditions=["ok", "damaged", "leaning", "pest", "missing_parts", "other"],
        ),
        "breakfast_cart": AssetTypeConfig(
            name_zh="早餐车",
            name_en="breakfast cart",
            codes=["0720"],
            interval_h=7 * 24,
            mobile=True,
            conditions=["ok", "damaged", "dirty", "other"],
        ),
        "manhole_cover": AssetTypeConfig(
            name_zh="井盖",
            name_en="manhole cover",
            codes=["0101", "0102", "0103"],
            interval_h=30 * 24,
            tolerance_m=20,
            conditions=["ok", "damaged", "missing", "other"],
        ),
    }


#: Every reason an asset ping is rejected with (the dead letter's ``reason``).
REJECTION_REASONS = frozenset(
    {
        "too_large",
        "malformed_ping",
        "bad_timestamp",
        "no_qr",
        "bad_photo",
        "photo_too_large",
        "no_qr_in_photo",
        "multiple_qr_in_photo",
        "qr_unreadable",
        "future_timestamp",
        "stale_ping",
        "foreign_qr",
        "malformed_qr",
        "unsupported_tag_version",
        "unknown_key_id",
        "retired_key",
        "bad_signature",
        "asset_mismatch",
        "unknown_asset",
        "asset_inactive",
        "grid_mismatch",
        "unknown_maintainer",
        "maintainer_inactive",
        "not_authorised",
        "condition_not_for_type",
        "no_position",
        "gps_far",
    }
)

#: Rejection reasons that count towards a tampering incident: what a forged, copied or
#: pasted-over tag produces, not what a clumsy scan produces.
DEFAULT_TAMPER_REASONS = [
    "foreign_qr",
    "malformed_qr",
    "unsupported_tag_version",
    "bad_signature",
    "unknown_key_id",
    "retired_key",
    "asset_mismatch",
    "gps_far",
]


class LabelConfig(_Section):
    """How printed tags look."""

    font: Path | None = Field(
        default=None,
        description="TrueType/OpenType font with Chinese glyphs for PNG labels; unset = first one found",
    )
    width_mm: float = Field(default=60, ge=30, le=200, description="label width")
    height_mm: float = Field(default=30, ge=20, le=200, description="label height")
    dpi: int = Field(default=300, ge=150, le=1200, description="PNG resolution")

    @model_validator(mode="after")
    def _qr_fits(self) -> LabelConfig:
        if self.width_mm < self.height_mm * 1.5:
            raise ValueError("labels are landscape: width_mm must be at least 1.5 × height_mm")
        return self


class AssetConfig(_Section):
    """QR-tagged city assets (报刊亭, 古树名木, 早餐车, 井盖): pings, checks and the cases they file."""

    enabled: bool = Field(default=False, description="handle asset pings and run the overdue sweep")
    registry: Path = Field(
        default_factory=lambda: _demo_file("assets.csv"),
        description="asset registry (CSV or YAML, declares its crs); one row per tagged asset",
    )
    maintainers: Path = Field(
        default_factory=lambda: _demo_file("maintainers.csv"),
        description="maintainer registry: who may scan which asset types in which areas",
    )
    keyring: list[TagKey] = Field(
        default_factory=list, description="tag keys; exactly one in state 'sign' when enabled"
    )
    types: dict[str, AssetTypeConfig] = Field(
        default_factory=default_types, description="asset types by name (the registry's 'type' column)"
    )
    max_future_s: float = Field(
        default=300, ge=0, le=86400, description="reject pings stamped further than this in the future"
    )
    max_age_s: float = Field(
        default=3 * 86400, ge=60, le=30 * 86400, description="reject pings older than this (stale)"
    )
    accuracy_cap_m: float = Field(
        default=50, ge=0, le=1000, description="most GPS accuracy credited to a scan's distance allowance"
    )
    require_position: bool = Field(default=True, description="reject pings without a GPS position")
    max_photo_pixels: int = Field(
        default=2560 * 1440, ge=320 * 240, le=8192 * 8192, description="largest photo decoded for a QR"
    )
    verification_roles: list[Role] = Field(
        default_factory=lambda: list[Role](["inspector"]),
        description="roles whose 'ok' scan verifies (核查) and closes an open damage case",
    )
    tamper_threshold: int = Field(
        default=3, ge=1, le=1000, description="forged or invalid scans of one asset or place that file a case"
    )
    tamper_window_s: float = Field(
        default=86400, ge=60, le=30 * 86400, description="window the tamper threshold counts in"
    )
    tamper_cell_m: float = Field(
        default=100, ge=10, le=2000, description="size of the square cells scans of unknown assets group in"
    )
    tamper_update_min_s: float = Field(
        default=3600, ge=0, le=86400, description="at most one case update per open tamper case this often"
    )
    tamper_quiet_s: float = Field(
        default=7 * 86400, ge=3600, le=90 * 86400, description="a tamper case clears after this long quiet"
    )
    tamper_reasons: list[str] = Field(
        default_factory=lambda: list(DEFAULT_TAMPER_REASONS),
        description="rejection reasons that count as forged or invalid scans",
    )
    tamper_category: str = Field(
        default="event:0601", pattern=_CATEGORY_REF, description="category of a suspected tampering case"
    )
    cart_zone_category: str = Field(
        default="event:0504",
        pattern=_CATEGORY_REF,
        description="category when a permitted cart trades outside its places (店外经营)",
    )
    cart_licence_category: str = Field(
        default="event:0501",
        pattern=_CATEGORY_REF,
        description="category when a cart trades outside its hours or without a valid permit (无照经营游商)",
    )
    overdue_every_s: float = Field(
        default=300, ge=10, le=86400, description="how often the overdue-inspection sweep runs"
    )
    overdue_max_new: int = Field(
        default=10000, ge=1, le=1_000_000, description="most overdue cases one sweep opens, most late first"
    )
    labels: LabelConfig = Field(default_factory=LabelConfig, description="printed tag layout")

    @model_validator(mode="after")
    def _consistent(self) -> AssetConfig:
        unknown = set(self.tamper_reasons) - REJECTION_REASONS
        if unknown:
            raise ValueError(f"tamper_reasons: unknown reasons {sorted(unknown)}")
        ids = [k.id for k in self.keyring]
        if len(set(ids)) != len(ids):
            raise ValueError("key ids must be unique")
        signing = [k.id for k in self.keyring if k.state == "sign"]
        if len(signing) > 1:
            raise ValueError(f"exactly one key may sign; found {signing}")
        if self.enabled and not signing:
            raise ValueError("enabled needs a keyring with one key in state 'sign'")
        owner: dict[str, str] = {}
        for name, t in self.types.items():
            if not name.isidentifier() or not name.isascii():
                raise ValueError(f"type name {name!r} must be an ASCII identifier")
            for code in t.codes:
                if code in owner:
                    raise ValueError(f"component class {code} belongs to both {owner[code]} and {name}")
                owner[code] = name
        return self

    def resolved(self, base: Path) -> AssetConfig:
        """Relative registry and font paths made relative to the config file's folder ``base``."""

        def fix(p: Path) -> Path:
            return p if p.is_absolute() else base / p

        labels = self.labels
        if labels.font is not None:
            labels = labels.model_copy(update={"font": fix(labels.font)})
        return self.model_copy(
            update={"registry": fix(self.registry), "maintainers": fix(self.maintainers), "labels": labels}
        )
