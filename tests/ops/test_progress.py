"""The progress helper: a redrawn line on a terminal, plain lines in a log."""

from __future__ import annotations

import io

from gridsense.progress import Progress, track


class FakeClock:
    def __init__(self) -> None:
        self.t = 0.0

    def __call__(self) -> float:
        return self.t


def test_a_log_gets_one_line_per_tenth() -> None:
    out = io.StringIO()
    clock = FakeClock()
    with Progress(total=200, label="replay", stream=out, tty=False, clock=clock) as bar:
        for _ in range(200):
            clock.t += 0.01
            bar.advance()
    lines = out.getvalue().splitlines()
    assert len(lines) == 11  # 0 % … 100 %, each once
    assert lines[-1].startswith("replay [##############################] 100.0% 200/200")
    assert "\r" not in out.getvalue()
    assert "100/s" in lines[-1]


def test_a_terminal_gets_one_line_redrawn_at_most_ten_times_a_second() -> None:
    out = io.StringIO()
    clock = FakeClock()
    bar = Progress(total=1000, stream=out, tty=True, clock=clock)
    for _ in range(1000):
        clock.t += 0.001  # a whole second in all
        bar.advance()
    bar.close()
    text = out.getvalue()
    assert text.endswith("\n") and text.count("\n") == 1
    assert 9 <= text.count("\r") <= 12
    assert "1000/1000" in text.split("\r")[-1]


def test_unknown_total_and_track() -> None:
    out = io.StringIO()
    items = list(track(iter(range(5)), label="rows", stream=out))
    assert items == [0, 1, 2, 3, 4]
    assert out.getvalue().splitlines()[-1].startswith("rows 5 done")
    out = io.StringIO()
    assert list(track([1, 2, 3], stream=out)) == [1, 2, 3]
    assert "3/3" in out.getvalue()
