"""A Mosquitto running the shipped secure config: deploy/mosquitto/mosquitto-secure.conf and acl,
with a password file and certificates made by the shipped scripts. Missing tools fail, never skip."""

from __future__ import annotations

import shutil
import subprocess
import threading
import time
import uuid
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import paho.mqtt.client as mqtt
import pytest
from paho.mqtt.enums import CallbackAPIVersion
from paho.mqtt.reasoncodes import ReasonCode

from gridsense.embedded_broker import free_port, wait_port
from gridsense.model.envelopes import Kind
from ingest.topics import TopicScheme

ROOT = Path(__file__).resolve().parents[2]
SECURE_CONF = ROOT / "deploy" / "mosquitto" / "mosquitto-secure.conf"
ACL = ROOT / "deploy" / "mosquitto" / "acl"
DEVICES_CSV = ROOT / "gridsense" / "data" / "demo" / "devices.csv"
PIPELINE_USER = "gridsense-pipeline"

# Two demo devices in two grids.
SCHEME = TopicScheme("city")
A, A_GRID = "rg-012001001-1", "110102012001001"
B, B_GRID = "rg-012001002-1", "110102012001002"
A_TOPIC = SCHEME.topic(A_GRID, Kind.RAIN, A)
B_TOPIC = SCHEME.topic(B_GRID, Kind.RAIN, B)
NOT_AUTHORISED = 135  # Mosquitto 2.0.11 answers a wrong password with it too, not with 134


def need(tool: str, package: str) -> str:
    path = shutil.which(tool) or (f"/usr/sbin/{tool}" if Path(f"/usr/sbin/{tool}").exists() else None)
    if path is None:
        pytest.fail(
            f"{tool} is not installed (Debian: apt-get install {package}); the security tests need it"
        )
    return path


def local_conf(text: str, port: int, tls_port: int, creds: Path, certs: Path, data: Path) -> str:
    """The shipped config with this machine's ports and paths; each swap must hit exactly once."""
    swaps = {
        "listener 1883": f"listener {port} 127.0.0.1",
        "listener 8883": f"listener {tls_port} 127.0.0.1",
        "/mosquitto/config/passwd": str(creds / "passwd"),
        "/mosquitto/config/acl": str(ACL),
        "/mosquitto/data/": f"{data}/",
        "log_dest stdout": f"log_dest file {data}/mosquitto.log",
    }
    for old, new in swaps.items():
        assert text.count(old) == 1, f"mosquitto-secure.conf: expected {old!r} once"
        text = text.replace(old, new)
    assert text.count("/mosquitto/certs/") == 3
    # Run as root, Mosquitto drops to the `mosquitto` user, which cannot read pytest's 0700
    # folders; `user root` keeps it as it is (no effect when not started as root).
    return "user root\n" + text.replace("/mosquitto/certs/", f"{certs}/")


@dataclass
class SecureBroker:
    port: int
    tls_port: int
    ca: Path
    passwords: dict[str, str]
    log: Path
    host: str = "127.0.0.1"


@pytest.fixture(scope="module")
def secure_broker(tmp_path_factory: pytest.TempPathFactory) -> Iterator[SecureBroker]:
    exe = need("mosquitto", "mosquitto")
    need("mosquitto_passwd", "mosquitto")
    need("openssl", "openssl")
    tmp = tmp_path_factory.mktemp("secure-broker")
    creds, certs, data = tmp / "creds", tmp / "certs", tmp / "data"
    data.mkdir()
    subprocess.run(
        [str(ROOT / "scripts" / "make-broker-credentials"), str(DEVICES_CSV), str(creds)], check=True
    )
    subprocess.run([str(ROOT / "scripts" / "make-test-ca"), str(certs)], check=True)
    lines = (creds / "device-credentials.csv").read_text().splitlines()[1:]
    passwords = dict(line.split(",", 1) for line in lines)
    passwords[PIPELINE_USER] = (creds / "pipeline.password").read_text().strip()
    port, tls_port = free_port(), free_port()
    conf = tmp / "mosquitto.conf"
    conf.write_text(local_conf(SECURE_CONF.read_text(), port, tls_port, creds, certs, data))
    proc = subprocess.Popen([exe, "-c", str(conf)], stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    try:
        wait_port(port)
        wait_port(tls_port)
    except TimeoutError:
        proc.kill()
        pytest.fail("mosquitto did not start: " + (proc.stderr.read().decode() if proc.stderr else ""))
    yield SecureBroker(port, tls_port, certs / "ca.crt", passwords, data / "mosquitto.log")
    proc.terminate()
    proc.wait(10)


@dataclass
class Session:
    """One MQTT 5 client: what the broker answered, and every message it delivered to us."""

    client: mqtt.Client
    connack: ReasonCode | None = None
    answered: threading.Event = field(default_factory=threading.Event)
    disconnects: int = 0
    received: list[tuple[str, bytes]] = field(default_factory=list)
    suback: list[ReasonCode] = field(default_factory=list)
    _lock: threading.Lock = field(default_factory=threading.Lock)
    _subscribed: threading.Event = field(default_factory=threading.Event)

    @property
    def accepted(self) -> bool:
        """The broker answered CONNACK with success and has not dropped us since."""
        return self.connack is not None and not self.connack.is_failure and self.disconnects == 0

    def publish(self, topic: str, payload: bytes) -> ReasonCode:
        """Publish at QoS 1 and return the PUBACK reason code (135 = not authorised)."""
        acks: dict[int, ReasonCode] = {}
        done = threading.Event()

        def on_publish(_c: Any, _u: Any, mid: int, rc: ReasonCode, _p: Any) -> None:
            acks[mid] = rc
            done.set()

        self.client.on_publish = on_publish
        info = self.client.publish(topic, payload, qos=1)
        assert done.wait(10), f"no PUBACK for {topic}"
        return acks[info.mid]

    def subscribe(self, topic: str) -> list[ReasonCode]:
        self._subscribed.clear()
        self.client.subscribe(topic, qos=1)
        assert self._subscribed.wait(10), "no SUBACK"
        return self.suback

    def payloads(self, topic: str | None = None) -> list[bytes]:
        with self._lock:
            return [p for t, p in self.received if topic is None or t == topic]

    def close(self) -> None:
        self.client.disconnect()
        self.client.loop_stop()


def connect(
    broker: SecureBroker,
    username: str | None,
    password: str | None = None,
    client_id: str = "",
    tls_ca: Path | str | None = None,
    port: int | None = None,
    timeout: float = 10.0,
) -> Session:
    """Connect and wait for the CONNACK (or the refusal); the caller checks ``connack``."""
    client = mqtt.Client(
        CallbackAPIVersion.VERSION2, client_id=client_id or f"t-{uuid.uuid4().hex[:8]}", protocol=mqtt.MQTTv5
    )
    s = Session(client)
    if username is not None:
        client.username_pw_set(username, password)
    if tls_ca is not None:  # a CA file, or "system" for the machine's trusted CAs
        client.tls_set(ca_certs=None if tls_ca == "system" else str(tls_ca))

    def on_connect(_c: Any, _u: Any, _f: Any, rc: ReasonCode, _p: Any) -> None:
        s.connack = rc
        s.answered.set()

    def on_disconnect(_c: Any, _u: Any, _f: Any, rc: ReasonCode, _p: Any) -> None:
        s.disconnects += 1
        s.answered.set()

    def on_message(_c: Any, _u: Any, msg: mqtt.MQTTMessage) -> None:
        with s._lock:
            s.received.append((msg.topic, bytes(msg.payload)))

    def on_subscribe(_c: Any, _u: Any, _mid: int, codes: list[ReasonCode], _p: Any) -> None:
        s.suback = codes
        s._subscribed.set()

    client.on_connect, client.on_disconnect = on_connect, on_disconnect
    client.on_message, client.on_subscribe = on_message, on_subscribe
    try:
        client.connect(broker.host, port or broker.port, keepalive=30)
    except OSError:  # ssl.SSLError included: the TLS handshake happens in connect()
        return s
    client.loop_start()
    s.answered.wait(timeout)
    if not s.accepted:
        client.loop_stop()
    return s


def wait_until(cond: Callable[[], bool], timeout: float = 10.0) -> bool:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if cond():
            return True
        time.sleep(0.02)
    return False


def fence(pipeline: Session, device: Session, own_topic: str) -> None:
    """An allowed message from ``device``; once it arrived, everything it sent before has too."""
    marker = f"fence-{uuid.uuid4().hex}".encode()
    assert device.publish(own_topic, marker) == 0
    assert wait_until(lambda: marker in pipeline.payloads(own_topic)), "the fence never arrived"


@pytest.fixture
def pipeline(secure_broker: SecureBroker) -> Iterator[Session]:
    s = connect(secure_broker, PIPELINE_USER, secure_broker.passwords[PIPELINE_USER])
    assert s.accepted, s.connack
    s.subscribe("city/#")
    yield s
    s.close()


def device(broker: SecureBroker, name: str, **kw: Any) -> Session:
    s = connect(broker, name, broker.passwords[name], **kw)
    assert s.accepted, f"{name} refused: {s.connack}"
    return s
