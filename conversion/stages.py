"""Items through a chain of stages: one after another on the calling thread (`serial`), or
overlapped, one thread per stage, joined by bounded queues (`pipelined`).

    interrupted = run_stages(frames, [segment, draw_and_encode], account, pipelined=True)

`items` is an iterator (decoding happens as it is iterated, so it is the first stage), each
stage takes the previous one's result, and `sink` takes the last result on the calling thread.
One thread per stage and first-in-first-out queues keep the items' order. Threads are enough
for overlap: LiteRT's invoke, PyAV's codecs, Pillow's PNG encoder and NumPy's large
operations release the GIL. The queues are bounded, so a slow stage holds the others back
instead of filling memory.

Stopping, the same in both modes as far as they can be:
- Ctrl-C (a KeyboardInterrupt in the calling thread or raised by a stage) stops the source;
  the items already past the point of interruption go on to the sink, so what the sink saw
  is complete. A second Ctrl-C stops every stage after the item in hand. Returns True.
- any other exception, in a stage or in the sink, stops every stage after the item in hand;
  once all threads have ended it is raised in the calling thread, unchanged.
"""
from __future__ import annotations

import queue
import threading
from typing import Callable, Iterator

_END = object()  # the source is exhausted (or was stopped): downstream finishes and ends
_ABORT = object()  # every stage stops now
_POLL_S = 0.05  # how often a blocked stage looks at the stop flags


def run_stages(items: Iterator, stages: list[Callable], sink: Callable, *,
               pipelined: bool = True, depth: int = 4) -> bool:
    """Run every item through `stages` into `sink`; True when Ctrl-C stopped it early."""
    if depth < 1:
        raise ValueError(f"depth must be at least 1, got {depth}")
    if not pipelined:
        return _serial(items, stages, sink)
    return _Pipeline(items, stages, sink, depth).run()


def _serial(items: Iterator, stages: list[Callable], sink: Callable) -> bool:
    try:
        for item in items:
            for stage in stages:
                item = stage(item)
            sink(item)
    except KeyboardInterrupt:
        return True
    finally:
        getattr(items, "close", lambda: None)()
    return False


class _Pipeline:
    def __init__(self, items: Iterator, stages: list[Callable], sink: Callable, depth: int):
        self.items, self.stages, self.sink = items, stages, sink
        # The sink's queue is unbounded: whatever passed the last stage (a frame encoded) must
        # reach the sink even while everything stops.
        self.queues = [queue.Queue(depth) for _ in stages] + [queue.Queue()]
        self.ending, self.aborting = threading.Event(), threading.Event()
        self.interrupted, self.error = False, None
        self.threads = [threading.Thread(target=self._feed, name="stage-source", daemon=True)]
        self.threads += [threading.Thread(target=self._stage, args=(i,), daemon=True,
                                          name=f"stage-{getattr(s, '__name__', i)}")
                         for i, s in enumerate(stages)]

    def run(self) -> bool:
        for thread in self.threads:
            thread.start()
        try:
            self._drain()
        finally:
            self._join()
        if self.error is not None:
            raise self.error
        # After a second Ctrl-C, what the last stage finished is still owed to the sink.
        while not self.queues[-1].empty():
            item = self.queues[-1].get_nowait()
            if item is not _END:
                self.sink(item)
        return self.interrupted

    def _drain(self) -> None:
        while True:
            try:
                item = self._get(self.queues[-1])
                if item is _END or item is _ABORT:
                    return
                self.sink(item)
            except KeyboardInterrupt:
                if self.ending.is_set():
                    self.aborting.set()
                    return
                self._interrupt()
            except BaseException as exc:  # raised by run() once every thread has ended
                self._fail(exc)
                return

    def _join(self) -> None:
        for thread in self.threads:
            while thread.is_alive():
                try:
                    thread.join(_POLL_S)
                except KeyboardInterrupt:
                    self.interrupted = True
                    self.aborting.set()

    def _feed(self) -> None:
        try:
            for item in self.items:
                if self.ending.is_set() or not self._put(self.queues[0], item):
                    break
        except KeyboardInterrupt:
            self._interrupt()
        except BaseException as exc:
            self._fail(exc)
        finally:
            getattr(self.items, "close", lambda: None)()
        self._put(self.queues[0], _END)

    def _stage(self, index: int) -> None:
        stage, inbox, outbox = self.stages[index], self.queues[index], self.queues[index + 1]
        while (item := self._get(inbox)) is not _ABORT:
            if item is _END:
                self._put(outbox, _END)
                return
            try:
                result = stage(item)
            except KeyboardInterrupt:
                # What came before goes on; upstream stops, and its rest is dropped here.
                self._interrupt()
                self._put(outbox, _END)
                while (item := self._get(inbox)) is not _END and item is not _ABORT:
                    pass
                return
            except BaseException as exc:
                self._fail(exc)
                return
            if not self._put(outbox, result):
                return

    def _get(self, inbox: queue.Queue):
        while not self.aborting.is_set():
            try:
                return inbox.get(timeout=_POLL_S)
            except queue.Empty:
                pass
        return _ABORT

    def _put(self, outbox: queue.Queue, item) -> bool:
        while True:
            try:
                outbox.put(item, timeout=_POLL_S)
                return True
            except queue.Full:
                if self.aborting.is_set():
                    return False

    def _interrupt(self) -> None:
        self.interrupted = True
        self.ending.set()

    def _fail(self, exc: BaseException) -> None:
        if self.error is None:
            self.error = exc
        self.aborting.set()
