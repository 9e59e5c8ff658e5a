"""The slot pool's interruption: a second Ctrl+C / SIGTERM while the first is being handled
must not let the launcher exit before the workers have saved the interrupted runs' state."""

from __future__ import annotations

import os
import signal
import threading
import time

import pytest

from llem.study.slots import Slot, SlotPool


@pytest.mark.timing
def test_a_second_interrupt_waits_for_the_stopping_and_the_state_write() -> None:
    started, stop_asked = threading.Event(), threading.Event()
    saved: list[str] = []

    def work(unit: int, slot: Slot) -> None:  # a run whose harness ends when stopped
        started.set()
        assert stop_asked.wait(30)
        time.sleep(0.3)  # the interrupted run's state write, slow on a loaded machine
        saved.append(f"run {unit} interrupted")

    def on_interrupt() -> None:  # stopping the container takes a while
        time.sleep(0.5)
        stop_asked.set()

    def press_ctrl_c_twice() -> None:
        assert started.wait(30)
        time.sleep(0.1)  # the pool waiting for its workers
        os.kill(os.getpid(), signal.SIGINT)
        time.sleep(0.2)  # the second while on_interrupt is still stopping the run
        os.kill(os.getpid(), signal.SIGINT)

    pool: SlotPool[int] = SlotPool([Slot(0)], work)
    # a test process started as a shell's background job inherits SIGINT ignored (as the
    # CI-under-load runs are): Ctrl+C must mean what it means for a user at a terminal
    old = signal.signal(signal.SIGINT, signal.default_int_handler)
    try:
        threading.Thread(target=press_ctrl_c_twice, daemon=True).start()
        with pytest.raises(KeyboardInterrupt):
            pool.run([1, 2], on_interrupt=on_interrupt)
    finally:
        signal.signal(signal.SIGINT, old)
    assert saved == ["run 1 interrupted"]  # saved before run() gave up; run 2 never started
