"""``Rejected``: what a dead letter's reason and detail, a log line and a copy of it carry."""

from __future__ import annotations

import copy
import pickle

from bridge.contract import StatusUnsupported
from gridsense.errors import Rejected


def test_the_message_names_the_reason_and_the_detail() -> None:
    assert str(Rejected("malformed", "not JSON: unexpected end of data")) == (
        "malformed: not JSON: unexpected end of data"
    )
    assert str(Rejected("rate_limited")) == "rate_limited"
    assert str(StatusUnsupported("status_unsupported", "MQTT ingest")) == "status_unsupported: MQTT ingest"


def test_a_copy_and_a_pickle_keep_reason_and_detail_apart() -> None:
    """``args`` is (reason, detail), so a rebuilt rejection (a copy, or one sent to another
    process) is the same rejection, not one whose reason is the whole message."""
    original = Rejected("schema", "ts is required")
    for rebuilt in (pickle.loads(pickle.dumps(original)), copy.copy(original)):
        assert type(rebuilt) is Rejected
        assert (rebuilt.reason, rebuilt.detail, str(rebuilt)) == ("schema", "ts is required", str(original))
    sub = pickle.loads(pickle.dumps(StatusUnsupported("status_unsupported", "MQTT ingest")))
    assert (type(sub), sub.reason, sub.detail) == (StatusUnsupported, "status_unsupported", "MQTT ingest")
