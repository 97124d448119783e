"""The hot-path list the build compiles, and what ``gridsense doctor`` says about it. The suite
runs twice (scripts/test): editable, where every hot-path module is plain Python, and under
scripts/with-compiled-hot-path, which sets GRIDSENSE_HOT_PATH_COMPILED and where each must
be an extension."""

from __future__ import annotations

import importlib
import os
import runpy
from pathlib import Path

import pytest

from gridsense.doctor import check_build
from gridsense.hot_path import MODULES, describe, plain_modules

ROOT = Path(__file__).resolve().parent.parent


def test_the_build_compiles_exactly_the_listed_modules_and_each_exists() -> None:
    hot_path = runpy.run_path(str(ROOT / "setup.py"))["HOT_PATH"]
    assert hot_path == [m.replace(".", "/") + ".py" for m in MODULES]
    assert all((ROOT / p).is_file() for p in hot_path)
    assert len(set(MODULES)) == len(MODULES)
    for module in MODULES:
        importlib.import_module(module)


def test_the_doctor_says_whether_the_hot_path_is_compiled() -> None:
    [finding] = check_build()
    if os.environ.get("GRIDSENSE_HOT_PATH_COMPILED"):
        assert plain_modules() == []
        assert (finding.status, finding.message) == (
            "ok",
            f"ingest hot path compiled with mypyc ({len(MODULES)} modules)",
        )
    else:
        assert plain_modules() == list(MODULES)
        assert describe() == "plain Python"
        assert finding.status == "warn" and "runs as plain Python" in finding.message
        assert finding.fix is not None and "pip install -v ." in finding.fix


def test_a_partly_compiled_installation_names_the_plain_modules(monkeypatch: pytest.MonkeyPatch) -> None:
    """A wheel built from a tree where one module failed to compile: the doctor names it."""
    import gridsense.hot_path

    monkeypatch.setattr(gridsense.hot_path, "plain_modules", lambda: ["rules.engine"])
    assert describe() == "partly plain Python: rules.engine"
    [finding] = check_build()
    assert finding.status == "warn" and "rules.engine" in finding.message
