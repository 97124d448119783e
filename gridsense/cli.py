"""The ``gridsense`` command."""

from __future__ import annotations

import argparse
import logging
import signal
import sqlite3
import sys
import threading
from pathlib import Path

from bridge.cli import register as register_bridge
from detectors.cli import register as register_cameras
from gridsense.errors import ConfigError
from gridsense.ops.cli import register as register_ops
from rules.assets.cli import register as register_assets


def _setup_logging(level: str) -> None:
    logging.basicConfig(
        level=getattr(logging, level.upper()),
        format="%(asctime)s %(levelname)s %(name)s %(message)s",
        stream=sys.stderr,
    )


def cmd_run(args: argparse.Namespace) -> int:
    from gridsense.app import App, settle_heap
    from gridsense.config import load_config

    cfg = load_config(Path(args.config))
    app = App(cfg)
    stop = threading.Event()
    for sig in (signal.SIGINT, signal.SIGTERM):
        signal.signal(sig, lambda *_: stop.set())
    try:
        app.start(stages_ready_s=args.stages_ready_s)
        settle_heap()
        logging.getLogger("gridsense").info("pipeline running; topic filter %s", app.scheme.subscription)
        while not stop.wait(1.0):
            if app.gateway.fatal is not None:
                break
            app.supervise()
    finally:
        app.stop()
    return 2 if app.gateway.fatal is not None else 0


def cmd_demo(args: argparse.Namespace) -> int:
    from gridsense.demo import run_demo

    return run_demo(minutes=args.minutes)


def cmd_config_check(args: argparse.Namespace) -> int:
    from gridsense.app import load_registries
    from gridsense.config import load_config

    cfg = load_config(Path(args.file))
    reg = load_registries(cfg)
    print(
        f"{args.file}: OK ({len(reg.grids)} grids, {len(reg.devices)} devices, "
        f"{len(reg.rules.rules)} rules, sink {cfg.sink.type})"
    )
    return 0


def cmd_config_show(args: argparse.Namespace) -> int:
    import yaml

    from gridsense.config import GridsenseConfig, load_config

    cfg = load_config(Path(args.file)) if args.file else GridsenseConfig()
    # mode="json" renders SecretStr as '**********': secrets are never printed.
    print(yaml.safe_dump(cfg.model_dump(mode="json"), allow_unicode=True, sort_keys=False), end="")
    return 0


def cmd_config_reference(_args: argparse.Namespace) -> int:
    from gridsense.config_reference import reference

    print(reference(), end="")
    return 0


def cmd_platform_serve(args: argparse.Namespace) -> int:
    from simulators.platform import run

    run(host=args.host, port=args.port, access_log=not args.no_access_log)
    return 0


def cmd_simulate_storm(args: argparse.Namespace) -> int:
    from datetime import UTC, datetime, timedelta

    from gridsense.app import load_registries
    from gridsense.config import load_config
    from gridsense.demo import STORM_GRIDS
    from ingest.topics import TopicScheme
    from simulators.publisher import MqttPublisher
    from simulators.storm import StormScenario, to_messages

    cfg = load_config(Path(args.config))
    reg = load_registries(cfg)
    devices = list(reg.devices)
    grids = frozenset(args.grid) if args.grid else STORM_GRIDS
    start = (datetime.now(UTC) - timedelta(minutes=args.minutes)).replace(second=0, microsecond=0)
    storm = StormScenario(start=start, minutes=args.minutes, hit_grids=grids)
    msgs = to_messages(
        storm.samples(devices), {d.device_id: d for d in devices}, TopicScheme(cfg.mqtt.topic_root)
    )
    with MqttPublisher(cfg.mqtt.host, cfg.mqtt.port, "gridsense-storm-sim") as pub:
        n = pub.publish(msgs)
    print(f"published {n} readings ({args.minutes} minutes, storm over {len(grids)} grids)")
    return 0


def cmd_deadletters(args: argparse.Namespace) -> int:
    from gridsense.config import load_config

    cfg = load_config(Path(args.config))
    conn = sqlite3.connect(f"file:{cfg.store.path}?mode=ro", uri=True)
    for at, topic, reason, detail in conn.execute(
        "SELECT at, topic, reason, detail FROM dead_letters ORDER BY id DESC LIMIT ?", (args.limit,)
    ):
        print(f"{at}  {reason:<16} {topic}  {detail}")
    return 0


def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="gridsense", description=__doc__)
    p.add_argument("--log-level", default="INFO", choices=["DEBUG", "INFO", "WARNING", "ERROR"])
    sub = p.add_subparsers(dest="command", required=True)

    run = sub.add_parser("run", help="run the pipeline against the configured broker, store and platform")
    run.add_argument("--config", required=True, help="YAML config file")
    run.add_argument(
        "--stages-ready-s",
        type=float,
        default=0.0,
        metavar="SECONDS",
        help="hold ingest back up to this long while the stage processes (case delivery, the"
        " InfluxDB forwarder) start; by default ingest starts at once, their queues being durable",
    )
    run.set_defaults(func=cmd_run)

    demo = sub.add_parser("demo", help="everything embedded: broker, platform, pipeline and a storm")
    demo.add_argument("--minutes", type=int, default=90, help="storm length in data time")
    demo.set_defaults(func=cmd_demo, log_level="WARNING")

    config = sub.add_parser("config", help="check or show a config file").add_subparsers(
        dest="config_command", required=True
    )
    check = config.add_parser("check", help="validate a config file and the registries it names")
    check.add_argument("file")
    check.set_defaults(func=cmd_config_check)
    show = config.add_parser("show", help="print the effective config, secrets masked")
    show.add_argument("file", nargs="?")
    show.set_defaults(func=cmd_config_show)
    ref = config.add_parser("reference", help="print the config reference (markdown)")
    ref.set_defaults(func=cmd_config_reference)

    platform = sub.add_parser("platform", help="the reference case platform").add_subparsers(
        dest="platform_command", required=True
    )
    serve = platform.add_parser("serve", help="serve the reference case platform over HTTP")
    serve.add_argument("--host", default="127.0.0.1")
    serve.add_argument("--port", type=int, default=8080)
    serve.add_argument("--no-access-log", action="store_true", help="no line per request (load tests)")
    serve.set_defaults(func=cmd_platform_serve)

    simulate = sub.add_parser("simulate", help="device simulators").add_subparsers(
        dest="simulate_command", required=True
    )
    storm = simulate.add_parser("storm", help="publish a storm over MQTT to the configured broker")
    storm.add_argument("--config", required=True)
    storm.add_argument("--minutes", type=int, default=90)
    storm.add_argument("--grid", action="append", help="grid codes the rain cell passes over")
    storm.set_defaults(func=cmd_simulate_storm)

    dl = sub.add_parser("deadletters", help="list recent dead letters")
    dl.add_argument("--config", required=True)
    dl.add_argument("--limit", type=int, default=50)
    dl.set_defaults(func=cmd_deadletters)

    register_assets(sub)
    register_bridge(sub)
    register_cameras(sub)
    register_ops(sub)
    return p


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    _setup_logging(args.log_level)
    try:
        return int(args.func(args))
    except ConfigError as exc:
        print(f"config error:\n{exc}", file=sys.stderr)
        return 2


if __name__ == "__main__":
    sys.exit(main())
