"""Supervised stage processes: a stage that ends on its own is started again after a wait that
doubles while it keeps failing, carrying its counts on; one that ends with a final exit code
(its configuration is wrong) is left down. Real spawned processes; the supervisor's clock is
passed in, so no test waits out a backoff."""

from __future__ import annotations

import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path

from gridsense.child_process import ChildProcess, Counts, Stoppable, Supervised
from tests.faults.harness import wait_for
from tests.fixtures.orphans import ROOT, alive

FINAL = 7


def _count_and_end(stop: Stoppable, counts: Counts, code: int) -> int:
    """A stage that counts its start and ends at once with ``code``."""
    counts[0] += 1
    return code


def _count_and_wait(stop: Stoppable, counts: Counts) -> int:
    counts[0] += 1
    stop.wait()
    return 0


def ending(code: int) -> Callable[[Counts | None], ChildProcess]:
    return lambda counts: ChildProcess("ending", _count_and_end, (code,), counts if counts is not None else 1)


def ended(stage: Supervised[ChildProcess]) -> None:
    wait_for(lambda: stage.process.exitcode is not None, 30, "the stage to end")


def test_a_stage_that_ends_on_its_own_is_restarted_after_a_doubling_wait_and_keeps_its_counts() -> None:
    stage = Supervised(ending(3), min_s=1.0, max_s=60.0)
    stage.start()
    ended(stage)
    now = time.monotonic()
    assert stage.process.exitcode == 3
    assert not stage.check(now)  # seen to have ended: its wait starts
    assert not stage.check(now + 0.9)
    first = stage.process
    assert stage.check(now + 1.0)
    assert stage.process is not first and stage.restarts == 1
    ended(stage)
    assert stage.process.counts[0] == 2  # the successor counted on from its predecessor's count
    later = time.monotonic()
    assert not stage.check(later)
    assert not stage.check(later + 1.9)  # it ended again soon after its start: the wait doubled
    assert stage.check(later + 2.0)
    assert stage.restarts == 2
    ended(stage)
    stage.stop()


def test_a_final_exit_code_is_left_for_an_operator() -> None:
    stage = Supervised(ending(FINAL), final=frozenset({FINAL}))
    stage.start()
    ended(stage)
    assert not stage.check(time.monotonic() + 3600)
    assert stage.restarts == 0 and stage.process.exitcode == FINAL


def test_a_running_stage_is_left_alone_and_stops_when_asked() -> None:
    stage = Supervised(
        lambda counts: ChildProcess("waiting", _count_and_wait, (), counts if counts is not None else 1)
    )
    stage.start()
    wait_for(lambda: stage.process.counts[0] == 1, 30, "the stage to start")
    assert not stage.check(time.monotonic() + 3600)
    stage.stop()
    assert stage.process.exitcode == 0 and stage.restarts == 0


def test_the_wait_starts_over_once_a_stage_had_run_a_good_while() -> None:
    stage = Supervised(ending(3), min_s=1.0, max_s=60.0)
    stage.start()
    ended(stage)
    now = time.monotonic()
    stage.check(now)
    assert stage.check(now + 1.0)  # the next wait is 2 s
    ended(stage)
    # Seen to have ended a minute after its start: not a crash loop, so 1 s again.
    much_later = time.monotonic() + 60.0
    assert not stage.check(much_later)
    assert stage.check(much_later + 1.0)
    ended(stage)
    stage.stop()


def test_a_stopped_stage_is_not_started_again() -> None:
    stage = Supervised(ending(3))
    stage.start()
    ended(stage)
    stage.stop()
    later = time.monotonic() + 3600
    assert not stage.check(later) and not stage.check(later + 3600)
    assert stage.restarts == 0


def test_a_restart_that_fails_is_tried_again_and_the_stage_stays_ended_meanwhile() -> None:
    """Spawning can fail (no memory left): the ended process stays, readiness keeps saying so."""
    attempts: list[int] = []

    def make(counts: Counts | None) -> ChildProcess:
        if counts is not None and len(attempts) < 1:
            attempts.append(1)
            raise OSError("cannot spawn")
        return ChildProcess("ending", _count_and_end, (3,), counts if counts is not None else 1)

    stage = Supervised(make, min_s=1.0)
    stage.start()
    ended(stage)
    first, now = stage.process, time.monotonic()
    stage.check(now)
    assert not stage.check(now + 1.0)  # the spawn failed
    assert stage.process is first and first.exitcode == 3 and stage.restarts == 0
    assert not stage.check(now + 2.9)  # the wait doubled
    assert stage.check(now + 3.0)
    assert stage.process is not first and stage.restarts == 1
    ended(stage)
    stage.stop()


PARENT = """
import time
from gridsense.child_process import ChildProcess
from tests.test_child_process import _count_and_wait

stage = ChildProcess("waiting", _count_and_wait, (), 1)
stage.start()
while stage.counts[0] == 0:  # the child is up and ignores SIGTERM by now
    time.sleep(0.05)
print(stage.pid, flush=True)
raise SystemExit("the parent fails without stopping its stage")
"""


def test_a_parent_that_fails_without_stopping_its_stage_still_exits_and_the_stage_stops() -> None:
    """multiprocessing waits for a parent's children at exit; a stage that ignores SIGTERM and
    was never told to stop would hang it there (the ``timeout`` only bounds a regression)."""
    done = subprocess.run(
        [sys.executable, "-c", PARENT], capture_output=True, text=True, cwd=ROOT, timeout=120
    )
    assert done.returncode == 1 and "fails without stopping" in done.stderr
    child = int(done.stdout.split()[0])
    wait_for(lambda: not alive(child), 30, "the stage to stop")


def _set_up_then_wait(stop: Stoppable, counts: Counts, gate: str) -> int:
    """A stage whose set-up lasts until ``gate`` exists; then it waits to be stopped."""
    counts[0] += 1  # spawned and imported: setting up
    while not Path(gate).exists():
        time.sleep(0.01)
    stop.wait()
    return 0


def test_a_stage_is_ready_once_it_asks_whether_to_stop_and_not_after_it_ended(tmp_path: Path) -> None:
    gate = tmp_path / "set-up-done"
    stage = Supervised(
        lambda counts: ChildProcess("setting-up", _set_up_then_wait, (str(gate),), counts or 1)
    )
    assert not stage.ready  # not started
    stage.start()
    wait_for(lambda: stage.process.counts[0] == 1, 30, "the stage to be spawned")
    assert not stage.ready  # still setting up
    gate.touch()
    wait_for(lambda: stage.ready, 30, "the stage to be ready")
    stage.stop()
    assert stage.process.exitcode == 0 and not stage.ready
