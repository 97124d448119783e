"""The ops section of the config: where the operations page, /metrics and the probes listen."""

from __future__ import annotations

from pathlib import Path

from pydantic import BaseModel, ConfigDict, Field, model_validator


class OpsConfig(BaseModel):
    """The operations page served by the pipeline itself (also /metrics, /healthz, /readyz)."""

    model_config = ConfigDict(extra="forbid")

    enabled: bool = Field(
        default=False,
        description="serve the operations page with the pipeline (the demo and compose turn it on)",
    )
    host: str = Field(
        default="127.0.0.1",
        description="address to listen on; 0.0.0.0 in a container (the page has no login: keep it internal)",
    )
    port: int = Field(default=8090, ge=0, le=65535, description="port; 0 picks a free one (tests)")
    poll_s: float = Field(
        default=1.0, ge=0.1, le=60, description="how often the page's feed looks at the store for changes"
    )
    map_refresh_max_s: float = Field(
        default=10.0,
        ge=0.5,
        le=600,
        description="upper bound of the adaptive map refresh: the map is rebuilt at most every "
        "max(poll_s, 5 × its last build time), and never less often than this while data arrives",
    )
    evidence_dir: Path | None = Field(
        default=None,
        description="folder the camera stage writes snapshots to (cameras' evidence_dir); "
        "unset = no thumbnails",
    )
    evidence_url_base: str | None = Field(
        default=None,
        description="URL prefix snapshot evidence is published under (cameras' evidence_url_base), "
        "so such URLs map back to files under evidence_dir",
    )
    title: str = Field(default="网格运行监控 · Operations", min_length=1, max_length=80)

    @model_validator(mode="after")
    def _url_base_needs_dir(self) -> OpsConfig:
        if self.evidence_url_base is not None and self.evidence_dir is None:
            raise ValueError("evidence_url_base needs evidence_dir (the files the URLs name)")
        return self
