"""Spread a study's runs over GPU slots: one experiment per slot at a time, never two on
one GPU.

A *slot* is the set of GPUs one experiment gets (``study.gpus`` chunked by
``study.gpus_per_experiment``). Each slot is served by one worker thread that pulls the
next unit of work from a shared FIFO queue, so runs still start in study order and a slot
is busy with at most one harness at any moment. Threads suffice: the work happens in
child processes/containers, the threads only wait on them.
"""

from __future__ import annotations

import queue
import signal
import threading
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import Any, Generic, TypeVar

from llem_schema.errors import ConfigError
from llem_schema.study import StudyExecution

U = TypeVar("U")


@dataclass(frozen=True)
class Slot:
    index: int
    gpus: list[int | str] = field(default_factory=list)

    def label(self) -> str:
        return ",".join(str(g) for g in self.gpus) if self.gpus else "default"


def gpu_slots(execution: StudyExecution, fallback: Sequence[int | str] = ()) -> list[Slot]:
    """The study's GPU slots; one slot with ``fallback`` GPUs when ``study.gpus`` is empty."""
    if not execution.gpus:
        return [Slot(0, list(fallback))]
    n = execution.gpus_per_experiment
    if len(execution.gpus) < n:
        raise ConfigError(
            f"study.gpus lists {len(execution.gpus)} GPU(s) but study.gpus_per_experiment is "
            f"{n}; list at least {n} GPUs or lower gpus_per_experiment"
        )
    if len(set(map(str, execution.gpus))) != len(execution.gpus):
        raise ConfigError(f"study.gpus: {execution.gpus} lists a GPU twice; list each once")
    return [
        Slot(i, list(execution.gpus[i * n : (i + 1) * n]))
        for i in range(len(execution.gpus) // n)
    ]


@dataclass
class PoolResult(Generic[U]):
    completed: list[U] = field(default_factory=list)
    not_started: list[U] = field(default_factory=list)
    errors: list[BaseException] = field(default_factory=list)


class SlotPool(Generic[U]):
    """Run ``work(unit, slot)`` for every unit, at most one unit per slot at a time.

    ``stop`` (set by ``work`` via :meth:`stop` or by the caller) stops dispatching new
    units; running ones finish. ``on_interrupt`` is called from the main thread on Ctrl+C
    so the caller can tell its runtimes to stop their children.
    """

    def __init__(
        self,
        slots: Sequence[Slot],
        work: Callable[[U, Slot], None],
        between: Callable[[Slot], None] | None = None,
    ) -> None:
        if not slots:
            raise ValueError("SlotPool needs at least one slot")
        self.slots = list(slots)
        self.work = work
        self.between = between
        self._stop = threading.Event()
        self._lock = threading.Lock()
        self.busy: dict[int, U] = {}

    def stop(self) -> None:
        self._stop.set()

    @property
    def stopped(self) -> bool:
        return self._stop.is_set()

    def run(
        self, units: Sequence[U], on_interrupt: Callable[[], None] | None = None
    ) -> PoolResult[U]:
        q: queue.Queue[U] = queue.Queue()
        for u in units:
            q.put(u)
        res: PoolResult[U] = PoolResult()

        def worker(slot: Slot) -> None:
            first = True
            while not self._stop.is_set():
                try:
                    unit = q.get_nowait()
                except queue.Empty:
                    return
                if not first and self.between is not None:
                    self.between(slot)
                    if self._stop.is_set():
                        q.put(unit)
                        return
                first = False
                with self._lock:
                    self.busy[slot.index] = unit
                try:
                    self.work(unit, slot)
                    with self._lock:
                        res.completed.append(unit)
                except BaseException as exc:
                    with self._lock:
                        res.errors.append(exc)
                    self._stop.set()
                finally:
                    with self._lock:
                        self.busy.pop(slot.index, None)

        # each thread says it has ended by an Event, not by Thread.join/is_alive: a join
        # interrupted by Ctrl+C leaves the Thread saying it is no longer alive (CPython
        # 3.11) while it still runs, and the launcher would exit mid state-write
        ended: list[threading.Event] = []
        try:  # entered before the threads start: a Ctrl+C meanwhile waits for those begun
            for s in self.slots:
                ended.append(_start(worker, f"llem-slot-{s.index}", s))
            for e in ended:
                while not e.wait(0.2):
                    pass
        except KeyboardInterrupt:
            self._stop.set()
            with _further_signals_noted():
                if on_interrupt is not None:  # in a thread of its own: a second Ctrl+C
                    # or SIGTERM cannot cut the stopping of containers and harnesses short
                    ended.insert(0, _start(lambda _: on_interrupt(), "llem-interrupt", None))
                _wait_shielded(ended)
            raise
        while True:
            try:
                res.not_started.append(q.get_nowait())
            except queue.Empty:
                break
        return res


@contextmanager
def _further_signals_noted() -> Iterator[None]:
    """While the pool shuts down after an interruption, a further SIGINT / SIGTERM is
    ignored instead of raised (main thread only: elsewhere no signal handler runs)."""
    if threading.current_thread() is not threading.main_thread():
        yield
        return
    old = {s: signal.signal(s, lambda *_: None) for s in (signal.SIGINT, signal.SIGTERM)}
    try:
        yield
    finally:
        for s, handler in old.items():  # None: a handler set outside Python
            signal.signal(s, signal.SIG_DFL if handler is None else handler)


def _start(target: Callable[[Any], None], name: str, arg: Any) -> threading.Event:
    """Run ``target(arg)`` in a daemon thread; the Event is set when it has ended."""
    ended = threading.Event()

    def run() -> None:
        try:
            target(arg)
        finally:
            ended.set()

    threading.Thread(target=run, name=name, daemon=True).start()
    return ended


def _wait_shielded(ended: Sequence[threading.Event]) -> None:
    """Wait until every thread has ended; a further Ctrl+C / SIGTERM meanwhile is not
    obeyed. The workers are saving the interrupted runs' state: exiting now would leave a
    run marked ``running`` with its state write cut short (seen under load in CI)."""
    for e in ended:
        while True:
            try:
                if e.wait(0.2):
                    break
            except KeyboardInterrupt:
                continue
