"""The config schema and its loader: defaults that run, errors that point at the line,
relative paths that follow the file, and secrets that are never printed."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest

from gridsense.app import load_registries
from gridsense.cli import main
from gridsense.config import (
    GridsenseConfig,
    MqttConfig,
    load_config,
    packaged,
)
from gridsense.errors import ConfigError


def write(path: Path, text: str) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(text, encoding="utf-8")
    return path


def config_error(path: Path) -> str:
    with pytest.raises(ConfigError) as info:
        load_config(path)
    return str(info.value)


# --- defaults -----------------------------------------------------------------------------


def test_defaults_are_valid_and_load_their_registries() -> None:
    cfg = GridsenseConfig()
    assert cfg == GridsenseConfig.model_validate({})
    reg = load_registries(cfg)
    assert len(reg.grids) > 0 and len(reg.devices) > 0
    assert "event:0111" in reg.catalog


def test_an_empty_file_gives_the_defaults(tmp_path: Path) -> None:
    cfg = load_config(write(tmp_path / "empty.yaml", "# nothing set\n"))
    assert cfg.mqtt == MqttConfig()
    assert cfg.rules == GridsenseConfig().rules
    assert cfg.store.path == tmp_path / "gridsense.db"  # relative default, next to the file


# --- errors name the file and line --------------------------------------------------------


def test_unknown_key_is_rejected_with_file_and_line(tmp_path: Path) -> None:
    path = write(
        tmp_path / "c.yaml",
        "# broker\n"  # 1
        "mqtt:\n"  # 2
        "  host: broker.example\n"  # 3
        "  hots: typo\n",  # 4
    )
    assert config_error(path) == f"{path}:4: mqtt.hots: Extra inputs are not permitted"


def test_unknown_section_is_reported_on_its_own_line(tmp_path: Path) -> None:
    path = write(
        tmp_path / "c.yaml",
        "# top\n"  # 1
        "mqttt:\n"  # 2: the typo is here, not on the next line
        "  host: broker.example\n",  # 3
    )
    assert config_error(path) == f"{path}:2: mqttt: Extra inputs are not permitted"


def test_every_error_in_a_file_is_reported(tmp_path: Path) -> None:
    path = write(
        tmp_path / "c.yaml",
        "mqtt:\n"  # 1
        "  port: 0\n"  # 2
        "limits:\n"  # 3
        "  max_gauge_bytes: 10\n"  # 4
        "rules:\n"  # 5
        "  lateness_s: 60\n"  # 6
        "  tick_s: 0\n",  # 7
    )
    lines = config_error(path).splitlines()
    assert f"{path}:2: mqtt.port: Input should be greater than or equal to 1" in lines
    assert f"{path}:4: limits.max_gauge_bytes: Input should be greater than or equal to 64" in lines
    assert f"{path}:7: rules.tick_s: Input should be greater than 0" in lines


def test_reconnect_backoff_order_is_checked_at_the_section(tmp_path: Path) -> None:
    path = write(
        tmp_path / "c.yaml",
        "# broker\nmqtt:\n  reconnect_min_s: 10\n  reconnect_max_s: 1\n",
    )
    msg = config_error(path)
    assert msg.startswith(f"{path}:2: mqtt: ")
    assert "reconnect_max_s must be >= reconnect_min_s" in msg


@pytest.mark.parametrize(("adapter", "section"), [("open311", "open311"), ("mqtt", "mqtt_platform")])
def test_an_adapter_without_its_section_is_a_config_error(tmp_path: Path, adapter: str, section: str) -> None:
    """Delivery builds the adapter in its own process: the config check must catch this first."""
    path = write(tmp_path / "c.yaml", f"# platform\nbridge:\n  adapter: {adapter}\n")
    msg = config_error(path)
    assert msg.startswith(f"{path}:2: bridge: ")
    assert f"bridge.adapter is {adapter} but the bridge.{section} section is missing" in msg


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("mqtt: [1\n", ": not valid YAML"),
        ("- mqtt\n", ":1: the file must be a mapping"),
        ("just text\n", ":1: the file must be a mapping"),
    ],
)
def test_files_that_are_not_a_config_mapping(tmp_path: Path, text: str, expected: str) -> None:
    path = write(tmp_path / "c.yaml", text)
    assert config_error(path).startswith(f"{path}{expected}")


def test_a_missing_config_file(tmp_path: Path) -> None:
    path = tmp_path / "absent.yaml"
    assert config_error(path).startswith(f"{path}: cannot read")


def test_wrong_sink_type_is_rejected(tmp_path: Path) -> None:
    path = write(tmp_path / "c.yaml", "sink:\n  type: kafka\n")
    assert config_error(path).startswith(f"{path}:1: sink: ")


# --- relative paths -----------------------------------------------------------------------

SITE_CONFIG = """\
registry:
  grids: data/grids.csv
  devices: data/devices.csv
  calendar: [calendar/cn-2026.yaml]
store:
  path: state/gridsense.db
"""


def test_relative_paths_are_resolved_against_the_configs_folder(tmp_path: Path) -> None:
    cfg = load_config(write(tmp_path / "site" / "gridsense.yaml", SITE_CONFIG))
    site = tmp_path / "site"
    assert cfg.registry.grids == site / "data" / "grids.csv"
    assert cfg.registry.devices == site / "data" / "devices.csv"
    assert cfg.registry.calendar == [site / "calendar" / "cn-2026.yaml"]
    assert cfg.store.path == site / "state" / "gridsense.db"
    # what the file does not set keeps the packaged default, an absolute path
    assert cfg.registry.categories == packaged("categories.csv")


def test_absolute_paths_are_kept(tmp_path: Path) -> None:
    elsewhere = tmp_path / "elsewhere" / "grids.csv"
    cfg = load_config(write(tmp_path / "site" / "c.yaml", f"registry:\n  grids: {elsewhere}\n"))
    assert cfg.registry.grids == elsewhere


def test_relative_paths_follow_the_file_not_the_working_directory(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    site = tmp_path / "site"
    write(site / "gridsense.yaml", SITE_CONFIG)
    (site / "data").mkdir()
    (site / "calendar").mkdir()
    shutil.copy(packaged("demo", "grids.csv"), site / "data" / "grids.csv")
    shutil.copy(packaged("demo", "devices.csv"), site / "data" / "devices.csv")
    shutil.copy(packaged("calendar", "cn-2026.yaml"), site / "calendar" / "cn-2026.yaml")
    run_from = tmp_path / "somewhere" / "else"
    run_from.mkdir(parents=True)
    monkeypatch.chdir(run_from)

    relative = Path("..") / ".." / "site" / "gridsense.yaml"
    cfg = load_config(relative)
    assert cfg.registry.grids.resolve() == (site / "data" / "grids.csv").resolve()
    # and the real check finds the files through those paths
    assert main(["config", "check", str(relative)]) == 0
    assert "OK (" in capsys.readouterr().out


def test_config_check_reports_a_registry_error_with_its_line(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    site = tmp_path / "site"
    write(
        site / "data" / "grids.csv",
        "# crs: wgs84\ngrid_code,street_name,community_name,lat,lon\n"
        "110102012001001,s,c,39.9,116.3\n123,s,c,39.9,116.3\n",
    )
    path = write(site / "c.yaml", "registry:\n  grids: data/grids.csv\n")
    assert main(["config", "check", str(path)]) == 2
    err = capsys.readouterr().err
    assert f"{site / 'data' / 'grids.csv'}:4: grid_code" in err


# --- secrets ------------------------------------------------------------------------------

SECRET_CONFIG = """\
mqtt:
  username: gridsense
  password: hunter2-mqtt-Secret
bridge:
  url: https://platform.example
  token: tok-9f8e7d-Bridge-Secret
"""


def test_config_show_never_prints_a_secret(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    path = write(tmp_path / "c.yaml", SECRET_CONFIG)
    assert main(["config", "show", str(path)]) == 0
    out, err = capsys.readouterr()
    for secret in ("hunter2-mqtt-Secret", "tok-9f8e7d-Bridge-Secret", "hunter2", "9f8e7d"):
        assert secret not in out
        assert secret not in err
    # the rest of the config is shown, and the secrets are visibly masked
    assert "username: gridsense" in out
    assert "https://platform.example" in out
    assert out.count("'**********'") == 2


def test_the_secrets_are_loaded_for_use(tmp_path: Path) -> None:
    cfg = load_config(write(tmp_path / "c.yaml", SECRET_CONFIG))
    assert cfg.mqtt.password is not None and cfg.bridge.token is not None
    assert cfg.mqtt.password.get_secret_value() == "hunter2-mqtt-Secret"
    assert cfg.bridge.token.get_secret_value() == "tok-9f8e7d-Bridge-Secret"
    assert "hunter2" not in repr(cfg) and "hunter2" not in str(cfg)


def test_a_config_error_does_not_echo_a_secret(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    path = write(tmp_path / "c.yaml", SECRET_CONFIG + "  retries: 3\n")
    assert main(["config", "show", str(path)]) == 2
    out, err = capsys.readouterr()
    assert f"{path}:7: bridge.retries" in err
    assert "Secret" not in out + err


def test_config_show_without_a_file_prints_the_defaults(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["config", "show"]) == 0
    out = capsys.readouterr().out
    assert "topic_root: city" in out
    assert "max_gauge_bytes: 8192" in out


def test_a_partition_outside_the_topic_root_is_rejected(tmp_path: Path) -> None:
    path = tmp_path / "c.yaml"
    path.write_text("mqtt:\n  topic_root: city\n  partition: ['town/110102/#']\n")
    with pytest.raises(
        ConfigError, match=r"c.yaml:1: mqtt: .*'town/110102/#' is not under topic_root 'city'"
    ):
        load_config(path)
    path.write_text("mqtt:\n  partition: ['$share/d1/city/110102/#', 'city/110101/#']\n")
    assert load_config(path).mqtt.partition == ["$share/d1/city/110102/#", "city/110101/#"]
