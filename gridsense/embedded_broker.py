"""A broker for the demo and the tests: Mosquitto if it is installed, else the pure-Python amqtt.

amqtt speaks MQTT 3.1.1 only and is fit for demo rates, not load: it lost acknowledgements
under a 20k msg/s burst when tried here. The demo keeps its rate modest for that reason.
"""

from __future__ import annotations

import asyncio
import os
import shutil
import socket
import subprocess
import tempfile
import threading
import time
from pathlib import Path
from typing import Any


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def wait_port(port: int, timeout: float = 10.0) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            socket.create_connection(("127.0.0.1", port), timeout=0.5).close()
            return
        except OSError:
            time.sleep(0.05)
    raise TimeoutError(f"nothing listens on 127.0.0.1:{port} after {timeout} s")


MOSQUITTO_CONF = """\
listener {port} 127.0.0.1
{user}
allow_anonymous true
persistence {persistence}
persistence_location {data}/
# Mosquitto drops QoS 1 messages for a slow subscriber past max_queued_messages (1000 by
# default); a pipeline that was away must find everything queued when it comes back.
max_queued_messages 1000000
max_inflight_messages 0
persistent_client_expiration 7d
log_dest file {data}/mosquitto.log
log_type error
log_type warning
log_type notice
"""


class MosquittoBroker:
    """A private Mosquitto on a free loopback port, with its own config and data folder."""

    protocol = "5"

    def __init__(
        self,
        port: int | None = None,
        data_dir: Path | None = None,
        persistence: bool = True,
        extra_conf: str = "",
    ) -> None:
        exe = shutil.which("mosquitto") or (
            "/usr/sbin/mosquitto" if Path("/usr/sbin/mosquitto").exists() else None
        )
        if exe is None:
            raise FileNotFoundError("mosquitto is not installed (Debian: apt-get install mosquitto)")
        self.exe = exe
        self.port = port or free_port()
        self._tmp = tempfile.TemporaryDirectory(prefix="gridsense-mosquitto-") if data_dir is None else None
        self.data_dir = Path(self._tmp.name) if self._tmp else Path(data_dir)  # type: ignore[arg-type]
        self.conf = self.data_dir / "mosquitto.conf"
        self.conf.write_text(
            MOSQUITTO_CONF.format(
                port=self.port,
                data=self.data_dir,
                persistence=str(persistence).lower(),
                # As root, Mosquitto drops to user "mosquitto", which cannot write a private
                # temp folder: it would then persist nothing. Stay root for these brokers.
                user="user root" if os.geteuid() == 0 else "",
            )
            + extra_conf
        )
        self._proc: subprocess.Popen[bytes] | None = None
        self.host = "127.0.0.1"

    def start(self) -> MosquittoBroker:
        self._proc = subprocess.Popen(
            [self.exe, "-c", str(self.conf)], stdout=subprocess.DEVNULL, stderr=subprocess.PIPE
        )
        try:
            wait_port(self.port)
        except TimeoutError:
            self._proc.kill()
            err = self._proc.stderr.read().decode() if self._proc.stderr else ""
            raise RuntimeError(f"mosquitto did not start: {err}") from None
        return self

    @property
    def pid(self) -> int | None:
        """The running broker's process id (the benchmarks read its CPU time)."""
        return self._proc.pid if self._proc is not None and self._proc.poll() is None else None

    def stop(self, kill: bool = False) -> None:
        if self._proc is not None and self._proc.poll() is None:
            if kill:
                self._proc.kill()
            else:
                self._proc.terminate()
            try:
                self._proc.wait(10)
            except subprocess.TimeoutExpired:  # still writing a large persistence file
                self._proc.kill()
                self._proc.wait(10)
        self._proc = None

    def cleanup(self) -> None:
        self.stop()
        if self._tmp is not None:
            self._tmp.cleanup()


class AmqttBroker:
    """amqtt in a background thread with its own event loop (MQTT 3.1.1, demo rates only)."""

    protocol = "3.1.1"

    def __init__(self, port: int | None = None) -> None:
        self.port = port or free_port()
        self.host = "127.0.0.1"
        self._loop = asyncio.new_event_loop()
        self._broker: Any = None
        self._thread = threading.Thread(target=self._run, name="amqtt", daemon=True)
        self._ready = threading.Event()

    def _run(self) -> None:
        from amqtt.broker import Broker

        asyncio.set_event_loop(self._loop)
        config = {
            "listeners": {"default": {"type": "tcp", "bind": f"127.0.0.1:{self.port}"}},
            "sys_interval": 0,
            "auth": {"allow-anonymous": True, "plugins": ["auth_anonymous"]},
            "topic-check": {"enabled": False},
        }
        self._broker = Broker(config, loop=self._loop)
        self._loop.run_until_complete(self._broker.start())
        self._ready.set()
        self._loop.run_forever()

    def start(self) -> AmqttBroker:
        self._thread.start()
        if not self._ready.wait(15):
            raise RuntimeError("amqtt broker did not start")
        wait_port(self.port)
        return self

    def stop(self, kill: bool = False) -> None:
        if self._broker is not None and self._loop.is_running():
            fut = asyncio.run_coroutine_threadsafe(self._broker.shutdown(), self._loop)
            fut.result(10)
            self._loop.call_soon_threadsafe(self._loop.stop)
            self._thread.join(10)

    def cleanup(self) -> None:
        self.stop()


def start_embedded_broker() -> MosquittoBroker | AmqttBroker:
    """Mosquitto when it is on PATH, otherwise amqtt."""
    try:
        return MosquittoBroker().start()
    except FileNotFoundError:
        return AmqttBroker().start()
