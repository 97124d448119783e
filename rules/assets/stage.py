"""Building the asset stage from its config: registries, key ring, handler and scheduled jobs."""

from __future__ import annotations

import logging
from dataclasses import dataclass, field

from gridsense.model.registry import GridRegistry
from ingest.contract import KindHandler, ScheduledJob
from rules.assets.config import AssetConfig
from rules.assets.handler import AssetHandler
from rules.assets.maintainers import MaintainerRegistry
from rules.assets.overdue import OverdueInspections
from rules.assets.registry import AssetRegistry
from rules.assets.tags import KeyRing
from rules.assets.tamper import TamperQuiet, TamperWatch
from rules.assets.verify import PingVerifier

log = logging.getLogger("gridsense.assets")


@dataclass
class AssetStage:
    """Everything the composition root needs from the asset stage."""

    registry: AssetRegistry
    maintainers: MaintainerRegistry
    keyring: KeyRing
    handler: AssetHandler
    jobs: list[ScheduledJob] = field(default_factory=list)  # the overdue sweep, the tamper quiet check

    @property
    def kind_handler(self) -> KindHandler:
        """The handler as the pipeline sees it (and mypy checks that it is one)."""
        return self.handler

    @property
    def categories(self) -> list[str]:
        """Every case category the stage may file: check them against the category table at load."""
        cfg = self.handler.cfg
        classes = sorted({f"component:{code}" for t in self.registry.types.values() for code in t.codes})
        return [*classes, cfg.tamper_category, cfg.cart_zone_category, cfg.cart_licence_category]


def load_registries(cfg: AssetConfig, grids: GridRegistry) -> tuple[AssetRegistry, MaintainerRegistry]:
    """The asset and maintainer registries the config names, checked against the grids."""
    registry = AssetRegistry.load(cfg.registry, cfg.types, grids)
    maintainers = MaintainerRegistry.load(cfg.maintainers, cfg.types)
    return registry, maintainers


def build_asset_stage(
    cfg: AssetConfig,
    grids: GridRegistry,
    max_ping_bytes: int,
    registries: tuple[AssetRegistry, MaintainerRegistry] | None = None,
) -> AssetStage:
    """The handler for ``asset`` messages and the jobs to schedule (overdue sweep, tamper quiet)."""
    registry, maintainers = registries or load_registries(cfg, grids)
    keyring = KeyRing(cfg.keyring)
    verifier = PingVerifier(cfg, registry, maintainers, keyring)
    handler = AssetHandler(cfg, registry, verifier, TamperWatch(cfg, grids), max_ping_bytes)
    jobs: list[ScheduledJob] = [OverdueInspections(cfg, registry), TamperQuiet(cfg)]
    log.info(
        "asset stage: %d assets, %d maintainers, signing key %s",
        len(registry),
        len(maintainers),
        keyring.signing_key_id,
    )
    return AssetStage(registry, maintainers, keyring, handler, jobs)
