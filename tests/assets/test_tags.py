"""Signed tag payloads, the key ring and the config that holds it."""

from __future__ import annotations

import pytest
import segno
from pydantic import ValidationError

from gridsense.errors import Rejected
from rules.assets.config import AssetConfig, TagKey
from rules.assets.tags import MAC_CHARS, KeyRing
from tests.assets.harness import TEST_KEYS, asset_config

TREE = "1101020401000001"


def test_payload_layout_and_qr_density() -> None:
    payload = KeyRing(TEST_KEYS).sign(TREE)
    prefix, asset, kid, mac = payload.split(":")
    assert (prefix, asset, kid, len(mac)) == ("GS1", TREE, "K2", MAC_CHARS)
    qr = segno.make(payload, error="q", micro=False, boost_error=False)
    # Alphanumeric mode, version 3 (29 × 29) at level Q: what the MAC length was chosen for.
    assert (qr.mode, qr.version, qr.error) == ("alphanumeric", 3, "Q")


def test_verify_returns_the_asset_and_the_key_that_signed() -> None:
    ring = KeyRing(TEST_KEYS)
    for kid in ("K1", "K2"):
        tag = ring.verify(ring.sign(TREE, key_id=kid))
        assert (tag.asset_id, tag.key_id) == (TREE, kid)


def test_the_same_asset_signed_by_two_keys_gives_two_tags() -> None:
    ring = KeyRing(TEST_KEYS)
    assert ring.sign(TREE, key_id="K1") != ring.sign(TREE, key_id="K2")


def test_a_ring_without_the_key_rejects_its_tags_as_unknown() -> None:
    signer = KeyRing(TEST_KEYS)
    stranger = KeyRing([TagKey(id="K9", secret="z" * 40, state="sign")])
    with pytest.raises(Rejected) as info:
        stranger.verify(signer.sign(TREE))
    assert info.value.reason == "unknown_key_id"


def test_a_different_secret_under_the_same_key_id_is_a_bad_signature() -> None:
    ours = KeyRing(TEST_KEYS)
    theirs = KeyRing([TagKey(id="K2", secret="attacker-guessed-secret-000000000000", state="sign")])
    with pytest.raises(Rejected) as info:
        ours.verify(theirs.sign(TREE))
    assert info.value.reason == "bad_signature"


def test_only_component_codes_are_signed() -> None:
    with pytest.raises(ValueError):
        KeyRing(TEST_KEYS).sign("rg-012001001-1")


def test_a_retired_key_cannot_sign() -> None:
    with pytest.raises(ValueError):
        KeyRing(TEST_KEYS).sign(TREE, key_id="K0")


@pytest.mark.parametrize(
    ("keys", "message"),
    [
        ([{"id": "K1", "secret": "short", "state": "sign"}], "at least 32 characters"),
        ([{"id": "k1", "secret": "s" * 40, "state": "sign"}], "pattern"),
        (
            [
                {"id": "K1", "secret": "s" * 40, "state": "sign"},
                {"id": "K2", "secret": "t" * 40, "state": "sign"},
            ],
            "exactly one key may sign",
        ),
        (
            [{"id": "K1", "secret": "s" * 40, "state": "sign"}, {"id": "K1", "secret": "t" * 40}],
            "unique",
        ),
        ([{"id": "K1", "secret": "s" * 40, "state": "verify"}], "one key in state 'sign'"),
    ],
)
def test_keyring_config_errors(keys: list[dict[str, str]], message: str) -> None:
    with pytest.raises(ValidationError) as info:
        AssetConfig.model_validate({"enabled": True, "keyring": keys})
    assert message in str(info.value)


def test_secrets_are_never_printed() -> None:
    cfg = asset_config()
    dumped = str(cfg.model_dump(mode="json")) + repr(cfg)
    for key in TEST_KEYS:
        assert key.secret.get_secret_value() not in dumped


def test_config_rejects_unknown_fields_and_overlapping_types() -> None:
    with pytest.raises(ValidationError):
        AssetConfig.model_validate({"tolerance": 5})
    types = {
        "a": {"name_zh": "甲", "name_en": "a", "codes": ["0121"], "interval_h": 24, "conditions": ["ok"]},
        "b": {"name_zh": "乙", "name_en": "b", "codes": ["0121"], "interval_h": 24, "conditions": ["ok"]},
    }
    with pytest.raises(ValidationError) as info:
        AssetConfig.model_validate({"types": types})
    assert "belongs to both" in str(info.value)
