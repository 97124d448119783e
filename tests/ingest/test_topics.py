"""The device topic scheme: ``<root>/<district>/<grid-code>/<kind>/<device-id>``."""

from __future__ import annotations

import pytest
from hypothesis import example, given
from hypothesis import strategies as st

from gridsense.errors import Rejected
from gridsense.model.envelopes import Kind
from ingest.topics import Topic, TopicScheme

GRID = "110102012001001"  # 西城区 什刹海街道, community 001, grid 001


def reason_for(scheme: TopicScheme, topic: str) -> str:
    with pytest.raises(Rejected) as info:
        scheme.parse(topic)
    return info.value.reason


def test_a_device_topic_parses_into_its_levels() -> None:
    assert TopicScheme().parse(f"city/110102/{GRID}/rain/rg-012001001-1") == Topic(
        district="110102", grid_code=GRID, kind=Kind.RAIN, device_id="rg-012001001-1"
    )


@pytest.mark.parametrize("kind", list(Kind))
def test_topic_builds_what_parse_reads(kind: Kind) -> None:
    scheme = TopicScheme()
    topic = scheme.topic(GRID, kind, "dev-1")
    assert topic == f"city/110102/{GRID}/{kind.value}/dev-1"
    assert scheme.parse(topic) == Topic("110102", GRID, kind, "dev-1")


def test_topic_accepts_the_kind_as_text() -> None:
    assert TopicScheme().topic(GRID, "snow", "sd-1") == f"city/110102/{GRID}/snow/sd-1"


@pytest.mark.parametrize(
    ("topic", "why"),
    [
        (f"city/110102/{GRID}/rain", "too shallow"),
        (f"city/110102/{GRID}/rain/rg-1/extra", "too deep"),
        (f"city/110102/{GRID}/rain/", "empty device level"),
        ("city/", "nothing under the root"),
        (f"city/110102/{GRID}/rain/rg-1/", "trailing slash"),
    ],
)
def test_wrong_depth_is_a_bad_topic(topic: str, why: str) -> None:
    assert reason_for(TopicScheme(), topic) == "bad_topic", why


@pytest.mark.parametrize(
    "topic",
    [
        f"town/110102/{GRID}/rain/rg-1",  # another root
        f"/city/110102/{GRID}/rain/rg-1",  # leading slash
        f"cityx/110102/{GRID}/rain/rg-1",  # the root is a level, not a prefix
        f"City/110102/{GRID}/rain/rg-1",  # topics are case sensitive
        "city",
        "",
    ],
)
def test_a_topic_under_another_root_is_a_bad_topic(topic: str) -> None:
    scheme = TopicScheme()
    with pytest.raises(Rejected) as info:
        scheme.parse(topic)
    assert info.value.reason == "bad_topic"


def test_grid_outside_the_topics_district_is_rejected() -> None:
    # 110105 is 朝阳区; the grid code says 西城区 (110102)
    with pytest.raises(Rejected) as info:
        TopicScheme().parse(f"city/110105/{GRID}/rain/rg-1")
    assert info.value.reason == "bad_topic"
    assert "is not in district 110105" in info.value.detail


@pytest.mark.parametrize(
    "topic",
    [
        f"city/11010/{GRID}/rain/rg-1",  # 5-digit district
        f"city/1101022/{GRID}/rain/rg-1",  # 7-digit district
        "city/110102/11010201200100/rain/rg-1",  # 14-digit grid
        "city/110102/1101020120010011/rain/rg-1",  # 16-digit grid
        "city/110102/11010201200100x/rain/rg-1",
        "city/11010a/11010a012001001/rain/rg-1",
        # digits of other scripts are not code digits
        "city/١١٠١٠٢/١١٠١٠٢012001001/rain/rg-1",
        # a trailing newline is not part of a code
        f"city/110102\n/{GRID}/rain/rg-1",
        f"city/110102/{GRID}\n/rain/rg-1",
    ],
)
def test_codes_with_wrong_digits_are_rejected(topic: str) -> None:
    with pytest.raises(Rejected) as info:
        TopicScheme().parse(topic)
    assert info.value.reason == "bad_topic"
    assert "6 digits" in info.value.detail


@pytest.mark.parametrize("kind", ["hail", "Rain", "RAIN", "", "+", "#"])
def test_an_unknown_kind_is_rejected(kind: str) -> None:
    with pytest.raises(Rejected) as info:
        TopicScheme().parse(f"city/110102/{GRID}/{kind}/rg-1")
    assert info.value.reason == "bad_topic"
    assert "unknown kind" in info.value.detail


@pytest.mark.parametrize(
    "device", ["-rg", ".rg", "rg 1", "rg+1", "rg#", "雨量计", "x" * 65, "rg-1\n", "rg-1\r\n"]
)
def test_an_invalid_device_id_is_rejected(device: str) -> None:
    with pytest.raises(Rejected) as info:
        TopicScheme().parse(f"city/110102/{GRID}/rain/{device}")
    assert info.value.reason == "bad_topic"
    assert "invalid device id" in info.value.detail


def test_a_device_id_of_64_characters_is_accepted() -> None:
    device = "r" + "g" * 63
    assert TopicScheme().parse(f"city/110102/{GRID}/rain/{device}").device_id == device


def test_subscription_and_deadletter_topics() -> None:
    scheme = TopicScheme()
    assert scheme.subscription == "city/+/+/+/+"
    assert scheme.deadletter == "city/deadletter"
    # the dead-letter topic is not a device topic: it does not match the subscription
    # (two levels, not five) and parsing it is refused
    assert reason_for(scheme, scheme.deadletter) == "bad_topic"


def test_a_multi_level_root() -> None:
    scheme = TopicScheme("test/run-42/city")
    assert scheme.subscription == "test/run-42/city/+/+/+/+"
    assert scheme.deadletter == "test/run-42/city/deadletter"
    topic = scheme.topic(GRID, Kind.WATER, "wl-1")
    assert topic == f"test/run-42/city/110102/{GRID}/water/wl-1"
    assert scheme.parse(topic) == Topic("110102", GRID, Kind.WATER, "wl-1")
    # a topic under the plain root is not ours, and ours is not the plain root's
    assert reason_for(scheme, f"city/110102/{GRID}/water/wl-1") == "bad_topic"
    assert reason_for(TopicScheme(), topic) == "bad_topic"


@pytest.mark.parametrize("root", ["", "/city", "city/", "city/+", "city/#", "+", "a/#/b"])
def test_invalid_roots_are_refused_at_construction(root: str) -> None:
    with pytest.raises(ValueError, match="invalid topic root"):
        TopicScheme(root)


def _matches(filter_: str, topic: str) -> bool:
    """MQTT filter matching, as a broker does it (only ``+`` is needed here)."""
    f, t = filter_.split("/"), topic.split("/")
    return len(f) == len(t) and all(a in ("+", b) for a, b in zip(f, t, strict=True))


@given(
    st.from_regex(r"\A[0-9]{6}\Z"),
    st.from_regex(r"\A[0-9]{9}\Z"),
    st.sampled_from(list(Kind)),
    st.from_regex(r"\A[A-Za-z0-9][A-Za-z0-9._-]{0,63}\Z"),
)
def test_every_built_topic_matches_the_subscription_and_parses_back(
    district: str, rest: str, kind: Kind, device: str
) -> None:
    scheme = TopicScheme("t/1")
    topic = scheme.topic(district + rest, kind, device)
    assert _matches(scheme.subscription, topic)
    assert scheme.parse(topic) == Topic(district, district + rest, kind, device)


_LEVEL = st.one_of(
    st.sampled_from(["110102", "110101", "110102012001001", "110101012001001", "rain", "snow", "x", ""]),
    st.text(alphabet="0123456789abrainsowZ._-/٣²é\n", max_size=17),
)


@given(st.lists(_LEVEL, min_size=1, max_size=6))
@example(["110102", "110102012001001", "rain", "rg-1"])  # valid
@example(["110101", "110102012001001", "rain", "rg-1"])  # grid of another district
@example(["11010٣", "11010٣012001001", "rain", "rg-1"])  # a non-ASCII digit
@example(["110102", "110102012001001", "rain", "rg-1\n"])  # a trailing newline
@example(["110102", "110102012001001", "rainy", "rg-1"])  # a kind's prefix
@example(["110102", "110102012001001", "rain", "rg_1.a"])  # valid, by the one match
@example(["110102", "110102012001001", "rain", "-rg"])  # a dash first
@example(["110102", "1101020120010²1", "rain", "rg-1"])  # a digit isdigit takes, not ASCII
@example(["110102", "110102012001001", "rain", "rgé"])  # a letter isalnum takes, not ASCII
@example(["110102", "110102012001001", "rain", "r" * 65])  # an id too long
def test_the_one_match_path_agrees_with_the_checks_that_give_reasons(levels: list[str]) -> None:
    """``parse`` (the string checks, then the one match) takes exactly what the checks that
    give reasons take, and rejects the rest for the same reason."""
    scheme = TopicScheme("city")
    topic = "city/" + "/".join(levels)
    try:
        slow: Topic | str = scheme._parse(topic)
    except Rejected as exc:
        slow = exc.reason
    try:
        fast: Topic | str = scheme.parse(topic)
    except Rejected as exc:
        fast = exc.reason
    assert fast == slow


def test_made_up_districts_do_not_grow_the_shared_names() -> None:
    from ingest.topics import DISTRICTS_SHARED

    scheme = TopicScheme("city")
    for n in range(DISTRICTS_SHARED + 500):
        d = f"{n:06d}"
        assert scheme.parse(f"city/{d}/{d}012001001/rain/rg-1").district == d
    assert len(scheme._districts) == DISTRICTS_SHARED
    a = scheme.parse("city/000001/000001012001001/rain/rg-1")
    b = scheme.parse("city/000001/000001012001002/snow/sg-2")
    assert a.district is b.district  # a known district's name is one string
