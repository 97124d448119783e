"""Builds the bridge's parts from config: the adapter, the outbox, the webhook router.

The composition root (``gridsense.app``) calls these; nothing here starts at import.
"""

from __future__ import annotations

import sqlite3

from fastapi import APIRouter

from bridge.config import (
    MqttPlatformConfig,
    Open311Config,
    OutboxConfig,
    PostgresOutboxConfig,
    StatusSyncConfig,
    WebhookConfig,
)
from bridge.contract import CaseAdapter, IncidentLookup, OutboxStore
from bridge.native_adapter import NativeRestAdapter
from bridge.outbox import CaseOutbox
from bridge.status_sync import StatusSync
from bridge.webhook import StatusWebhook, webhook_router
from gridsense.config import BridgeConfig
from gridsense.errors import ConfigError
from gridsense.model.worktime import WorkCalendar


def build_adapter(
    kind: str,
    base: BridgeConfig,
    open311: Open311Config | None = None,
    mqtt: MqttPlatformConfig | None = None,
) -> CaseAdapter:
    """The adapter named by ``kind`` (native, open311, mqtt), from its config section."""
    if kind == "native":
        return NativeRestAdapter(base)
    if kind == "open311":
        if open311 is None:
            raise ConfigError("bridge.adapter is open311 but the bridge.open311 section is missing")
        from bridge.open311_adapter import Open311Adapter

        return Open311Adapter(open311)
    if kind == "mqtt":
        if mqtt is None:
            raise ConfigError("bridge.adapter is mqtt but the bridge.mqtt_platform section is missing")
        from bridge.mqtt_adapter import MqttCaseAdapter

        return MqttCaseAdapter(mqtt)
    raise ConfigError(f"bridge.adapter: unknown adapter {kind!r} (native, open311, mqtt)")


def open_outbox(
    outbox: OutboxConfig, state_conn: sqlite3.Connection, timeout_s: float
) -> sqlite3.Connection | OutboxStore:
    """What ``CaseDelivery`` takes: the SQLite state connection, or a PostgreSQL outbox store."""
    if not isinstance(outbox, PostgresOutboxConfig):
        return state_conn
    if outbox.lease_s <= 2 * timeout_s:
        raise ConfigError(
            f"bridge.outbox.lease_s ({outbox.lease_s}) must exceed twice the adapter timeout ({timeout_s})"
        )
    from bridge.pg_outbox import PgCaseOutbox, connect_pg

    conn = connect_pg(outbox.dsn.get_secret_value(), outbox.db_schema)
    return PgCaseOutbox(conn, outbox.worker_id, outbox.lease_s)


def outbox_store(outbox: sqlite3.Connection | OutboxStore) -> OutboxStore:
    """What ``open_outbox`` returned, as an ``OutboxStore``."""
    return CaseOutbox(outbox) if isinstance(outbox, sqlite3.Connection) else outbox


def close_outbox(outbox: sqlite3.Connection | OutboxStore) -> None:
    """Close the connection ``open_outbox`` opened (the SQLite state connection is the caller's)."""
    from bridge.pg_outbox import PgCaseOutbox

    if isinstance(outbox, PgCaseOutbox):
        outbox.close()


def build_webhook(
    cfg: WebhookConfig,
    outbox: sqlite3.Connection | OutboxStore,
    status_sync: StatusSyncConfig,
    incidents: IncidentLookup | None = None,
    calendar: WorkCalendar | None = None,
    path: str = "/bridge/status",
) -> tuple[APIRouter, StatusWebhook]:
    """The router to mount and its receiver (for stats). Give it its own database connection."""
    store = outbox_store(outbox)
    if incidents is None and isinstance(outbox, sqlite3.Connection):
        from bridge.status_sync import SqliteIncidents

        incidents = SqliteIncidents(outbox)
    receiver = StatusWebhook(StatusSync(store, status_sync, incidents, calendar), cfg)
    return webhook_router(receiver, path), receiver
