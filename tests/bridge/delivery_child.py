"""A delivery worker in a process of its own, for the SIGKILL test: drain the SQLite outbox, exit.

``python -m tests.bridge.delivery_child STATE_DB PLATFORM_URL``; exit 0 once the outbox is empty.
"""

from __future__ import annotations

import sys
import time
from pathlib import Path

from bridge.delivery import CaseDelivery
from bridge.native_adapter import NativeRestAdapter
from gridsense.config import BridgeConfig
from gridsense.db import connect


def main(db: str, url: str) -> int:
    cfg = BridgeConfig(url=url, timeout_s=5.0, backoff_initial_s=0.05, backoff_max_s=0.5)
    conn = connect(Path(db), create=False)
    delivery = CaseDelivery(conn, NativeRestAdapter(cfg), cfg)
    print("delivering", flush=True)
    give_up = time.monotonic() + 60
    while delivery.depth() and time.monotonic() < give_up:
        if not delivery.deliver_due():
            time.sleep(0.02)
    print(f"done delivered={delivery.stats.delivered}", flush=True)
    return 0 if delivery.depth() == 0 else 1


if __name__ == "__main__":
    sys.exit(main(sys.argv[1], sys.argv[2]))
