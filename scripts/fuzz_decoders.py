#!/usr/bin/env python3
"""Coverage-guided fuzzing (atheris, libFuzzer) of everything that parses outside input.

    scripts/fuzz_decoders.py [--runs 100000] [--target NAME ...] [--utf8-files] [--json FILE]

Targets: gauge_json and gauge_senml (ingest.gauge_codec.decode_gauge, seeded with JSON or
SenML and a dictionary of their keys and units), topic (TopicScheme.parse), rule_file
(rules.spec.load_rules on a temp file) and grid_registry (GridRegistry.load on a temp CSV).
The contract checked: an input either succeeds or raises ``Rejected`` (decoders) or
``ConfigError`` (files) with a non-empty reason; anything else is a crash. Crashes are
counted, their inputs saved under test-artifacts/fuzz/, and fuzzing goes on. Exit status 1
if any target crashed. Each target runs in its own process, since libFuzzer owns it.
Needs: pip install atheris (not a test dependency).
"""

from __future__ import annotations

import argparse
import atexit
import hashlib
import json
import math
import re
import subprocess
import sys
import tempfile
from collections import Counter
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
CRASH_DIR = ROOT / "test-artifacts" / "fuzz"
NOW = datetime(2026, 7, 21, 6, 5, tzinfo=UTC)
MAX_FUTURE = timedelta(days=1)
TARGETS = ("gauge_json", "gauge_senml", "topic", "rule_file", "grid_registry")

SENML_TOKENS = ["bn", "bt", "bu", "bv", "bs", "bver", "n", "u", "v", "vs", "vb", "vd", "s", "t", "ut"]
SENML_TOKENS += ["urn:dev:", "rain", "snow_depth", "water_level", "battery"]
SENML_TOKENS += ["m", "cm", "mm", "m/s", "mm/h", "%EL", "%", "/"]
JSON_TOKENS = ["device_id", "ts", "battery", "ut", "rain_mm", "rain_counter_mm", "rain_rate_mm_h"]
JSON_TOKENS += ["snow_depth_cm", "water_level_cm"]
NUMBER_TOKENS = ["1e308", "-0", "NaN", "268435456", "1784613900", "2026-07-21T14:05:00+08:00", "true", "null"]


def seeds(target: str) -> tuple[list[bytes], list[str]]:
    """Seed inputs and dictionary tokens of a target."""
    from gridsense.config import packaged
    from gridsense.model.envelopes import Kind
    from ingest.gauge_codec import Sample, encode_json, encode_senml

    samples = [
        Sample("rg-0001", Kind.RAIN, NOW, "amount", 0.5, 87.0),
        Sample("rg-0002", Kind.RAIN, NOW, "counter", 12.5, None, 60.0),
        Sample("rg-0003", Kind.RAIN, NOW, "rate", 30.0),
        Sample("sd-0001", Kind.SNOW, NOW, "level", 4.0, 55.0),
        Sample("wl-0001", Kind.WATER, NOW, "level", 31.0),
    ]
    if target == "gauge_json":
        return [encode_json(s) for s in samples], JSON_TOKENS + NUMBER_TOKENS
    if target == "gauge_senml":
        return [encode_senml(s) for s in samples], SENML_TOKENS + NUMBER_TOKENS
    if target == "topic":
        topics = [
            b"city/110102/110102012001001/rain/rg-012001001-1",
            b"city/110105/110105001002003/camera/c.1",
        ]
        return topics, ["city/", "/", "+", "#", "110102", "110102012001001", *(k.value for k in Kind)]
    files = {
        "rule_file": [packaged("rules", "default.yaml"), ROOT / "tests" / "e2e" / "rules_1h.yaml"],
        "grid_registry": [packaged("demo", "grids.csv")],
    }[target]
    texts = [f.read_bytes() for f in files]
    words = sorted({w for t in texts for w in re.findall(rb"[A-Za-z_][A-Za-z_:0-9]{1,30}", t)})
    return texts, [w.decode() for w in words] + ["# crs: ", ": ", "- ", "\n  ", "{", "}", "[", "]", ","]


def checker(target: str, workdir: Path, utf8: bool) -> tuple[Callable[[bytes], None], type[Exception]]:
    """The call under test and the one exception type it may raise."""
    from gridsense.config import packaged
    from gridsense.errors import ConfigError, Rejected
    from gridsense.model.catalog import Catalog
    from gridsense.model.registry import GridRegistry
    from ingest.gauge_codec import decode_gauge
    from ingest.topics import TopicScheme
    from rules.spec import load_rules

    if target in ("gauge_json", "gauge_senml"):

        def gauge(data: bytes) -> None:
            for s in decode_gauge(data, NOW, MAX_FUTURE):
                assert math.isfinite(s.value), f"non-finite sample {s}"

        return gauge, Rejected
    if target == "topic":
        scheme = TopicScheme("city")

        def topic(data: bytes) -> None:
            scheme.parse(data.decode("utf-8", "replace"))

        return topic, Rejected
    catalog = Catalog.load(packaged("categories.csv"))
    path = workdir / ("rules.yaml" if target == "rule_file" else "grids.csv")

    def from_file(data: bytes) -> None:
        path.write_bytes(data.decode("utf-8", "replace").encode() if utf8 else data)
        if target == "rule_file":
            load_rules(path, catalog)
        else:
            GridRegistry.load(path)

    return from_file, ConfigError


def reason_of(exc: Exception, workdir: Path) -> str:
    """A rejection's reason: Rejected.reason, or a short bucket of a ConfigError's message ("" = none)."""
    if hasattr(exc, "reason"):
        return str(exc.reason)
    text = str(exc).split("\n", 1)[0].replace(str(workdir), "")
    text = re.sub(r"^/[\w.]+(:\d+)?: ?", "", text).lstrip(": ")
    head, sep, _ = text.partition(": ")
    return re.sub(r"\d+", "N", head if head and sep else text)[:48]


def libfuzzer_escape(token: str) -> str:
    """A dictionary entry's body: printable ASCII as is, every other byte as \\xNN."""
    return "".join(chr(b) if 32 <= b < 127 and chr(b) not in '\\"' else f"\\x{b:02x}" for b in token.encode())


def child(target: str, runs: int, out: Path, utf8: bool) -> None:
    import atheris

    with atheris.instrument_imports(include=["ingest", "gridsense", "rules"]):
        call, allowed = checker(target, workdir := Path(tempfile.mkdtemp(prefix=f"fuzz-{target}-")), utf8)
    counts: dict[str, Counter[str]] = {"outcome": Counter(), "rejected": Counter(), "crashes": Counter()}

    def one_input(data: bytes) -> None:
        counts["outcome"]["inputs"] += 1
        try:
            call(data)
        except allowed as exc:
            reason = reason_of(exc, workdir)
            if reason.strip():
                counts["rejected"][reason] += 1
                return
            crash(data, AssertionError(f"{type(exc).__name__} without a reason"))
        except Exception as exc:  # the finding: counted, its input kept, fuzzing goes on
            crash(data, exc)
        else:
            counts["outcome"]["accepted"] += 1

    def crash(data: bytes, exc: Exception) -> None:
        # Name the deepest frame in this repository: that is where the error escaped our code.
        where, tb = "?", exc.__traceback__
        while tb is not None:
            path = Path(tb.tb_frame.f_code.co_filename)
            if path.is_relative_to(ROOT):
                where = f"{path.relative_to(ROOT)}:{tb.tb_lineno} ({tb.tb_frame.f_code.co_name})"
            tb = tb.tb_next
        sig = f"{type(exc).__name__} at {where}"
        if not counts["crashes"][sig]:
            CRASH_DIR.mkdir(parents=True, exist_ok=True)
            name = f"{target}-{hashlib.sha1(data).hexdigest()[:12]}"
            (CRASH_DIR / name).write_bytes(data)
            print(f"CRASH {target}: {sig}: {exc!r:.200} (input saved as {CRASH_DIR / name})", flush=True)
        counts["crashes"][sig] += 1

    atexit.register(lambda: out.write_text(json.dumps({k: dict(v) for k, v in counts.items()})))
    corpus = workdir / "corpus"
    corpus.mkdir()
    inputs, tokens = seeds(target)
    for i, seed in enumerate(inputs):
        (corpus / f"seed-{i}").write_bytes(seed)
    dictionary = workdir / "tokens.dict"
    dictionary.write_text("".join(f'"{libfuzzer_escape(t)}"\n' for t in tokens))
    max_len = 8192 if target == "rule_file" else 4096
    args = [
        sys.argv[0],
        f"-atheris_runs={runs}",
        f"-max_len={max_len}",
        f"-dict={dictionary}",
        "-seed=1",
        str(corpus),
    ]
    atheris.Setup(args, one_input)
    atheris.Fuzz()


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--runs", type=int, default=100_000, help="inputs per target")
    ap.add_argument("--target", action="append", choices=TARGETS, help="only these targets (repeatable)")
    ap.add_argument("--json", type=Path, help="also write the counts here")
    ap.add_argument(
        "--utf8-files",
        action="store_true",
        help="write only valid UTF-8 to the rule and registry files, to fuzz past a decoding crash",
    )
    ap.add_argument("--child", choices=TARGETS, help=argparse.SUPPRESS)
    ap.add_argument("--out", type=Path, help=argparse.SUPPRESS)
    args = ap.parse_args()
    if args.child:
        child(args.child, args.runs, args.out, args.utf8_files)
        return 0
    results = {}
    for target in args.target or TARGETS:
        out = Path(tempfile.mkstemp(suffix=".json")[1])
        cmd = [sys.executable, __file__, "--child", target, "--runs", str(args.runs), "--out", str(out)]
        cmd += ["--utf8-files"] if args.utf8_files else []
        log = subprocess.run(cmd, cwd=ROOT, capture_output=True, text=True)
        for line in log.stdout.splitlines():
            if line.startswith("CRASH"):
                print(line)
        if not out.read_text():
            print(
                f"{target}: the fuzzer died (exit {log.returncode}):\n{log.stderr[-2000:]}", file=sys.stderr
            )
            return 2
        results[target] = json.loads(out.read_text())
        out.unlink()
        report(target, results[target])
    if args.json:
        args.json.write_text(json.dumps(results, indent=2, ensure_ascii=False) + "\n")
    return 1 if any(r["crashes"] for r in results.values()) else 0


def report(target: str, r: dict[str, dict[str, int]]) -> None:
    o = r["outcome"]
    crashes = sum(r["crashes"].values())
    print(
        f"{target}: {o.get('inputs', 0)} inputs, {o.get('accepted', 0)} accepted, "
        f"{sum(r['rejected'].values())} rejected, {crashes} crashes"
    )
    for reason, n in Counter(r["rejected"]).most_common(8):
        print(f"    rejected {n:>7}  {reason}")
    rest = sum(r["rejected"].values()) - sum(n for _, n in Counter(r["rejected"]).most_common(8))
    if rest:
        print(f"    rejected {rest:>7}  (other reasons)")
    for sig, n in r["crashes"].items():
        print(f"    CRASH    {n:>7}  {sig}")


if __name__ == "__main__":
    sys.exit(main())
