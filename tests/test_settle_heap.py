"""``settle_heap``: what a started pipeline holds leaves the collector's view, garbage does not."""

from __future__ import annotations

import gc
import weakref

from gridsense.app import settle_heap


def test_settle_heap_collects_first_then_freezes_what_is_alive() -> None:
    class Node:
        def __init__(self) -> None:
            self.me = self

    gc.disable()  # no automatic collection may free the garbage before settle_heap does
    kept = [Node() for _ in range(10)]
    garbage = [weakref.ref(Node()) for _ in range(10)]  # cycles: only the collector frees them
    assert all(ref() is not None for ref in garbage)
    gc.unfreeze()
    try:
        settle_heap()
        frozen = gc.get_freeze_count()
        assert frozen > len(kept)
        assert all(ref() is None for ref in garbage)  # collected before the freeze, not kept forever
    finally:
        gc.unfreeze()  # this test process builds many Apps: leave the collector as it was
        gc.enable()
