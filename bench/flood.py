"""A separate publisher process: publish ``topic<TAB>payload`` lines from a file at QoS 1.

    python bench/flood.py HOST PORT FILE [--rate MSGS_PER_S] [--stamp]

``--stamp`` rewrites each JSON payload's ``ts`` to the publish time (latency runs).
"""

from __future__ import annotations

import argparse
import sys
import time
from datetime import UTC, datetime

import orjson
import paho.mqtt.client as mqtt
from paho.mqtt.enums import CallbackAPIVersion


def main() -> int:
    ap = argparse.ArgumentParser()
    ap.add_argument("host")
    ap.add_argument("port", type=int)
    ap.add_argument("file")
    ap.add_argument("--rate", type=float, default=0.0, help="messages per second; 0 = as fast as possible")
    ap.add_argument("--stamp", action="store_true")
    ap.add_argument("--qos", type=int, default=1)
    args = ap.parse_args()
    with open(args.file, "rb") as f:
        lines = f.read().splitlines()
    client = mqtt.Client(
        CallbackAPIVersion.VERSION2, client_id=f"flood-{time.time_ns()}", protocol=mqtt.MQTTv5
    )
    client.max_inflight_messages_set(1000)
    client.connect(args.host, args.port)
    client.loop_start()
    window: list[mqtt.MQTTMessageInfo] = []
    t0 = time.perf_counter()
    for i, line in enumerate(lines):
        topic, payload = line.split(b"\t", 1)
        if args.stamp:
            doc = orjson.loads(payload)
            if isinstance(doc, list):  # SenML: the base time
                doc[0]["bt"] = round(time.time(), 3)
            else:
                doc["ts"] = datetime.now(UTC).isoformat(timespec="milliseconds")
            payload = orjson.dumps(doc)
        window.append(client.publish(topic.decode(), payload, qos=args.qos))
        if len(window) >= 5000:  # paho has 65,535 message ids: wait per window
            for info in window:
                info.wait_for_publish(60)
            window.clear()
        if args.rate:
            ahead = (i + 1) / args.rate - (time.perf_counter() - t0)
            if ahead > 0:
                time.sleep(ahead)
    for info in window:
        info.wait_for_publish(60)
    client.disconnect()
    client.loop_stop()
    print(f"published {len(lines)} in {time.perf_counter() - t0:.2f} s", file=sys.stderr)
    return 0


if __name__ == "__main__":
    sys.exit(main())
