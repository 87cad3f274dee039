"""Iterate in a thread, a few items ahead of the caller: the import reads, parses and hashes its next batches
while the job's thread waits on PostgreSQL for this one (file reads and psycopg's waits release the GIL, so on
two cores the two overlap)."""

import queue
import threading
from contextlib import contextmanager


@contextmanager
def prefetched(items, depth=2, name="prefetch"):
    """`with prefetched(items) as ahead: for item in ahead: ...`. `items` is iterated in a thread, at most
    `depth` items ahead. An exception in the thread is raised in the caller; leaving the block early stops
    the thread, and a generator of `items` is closed in the thread itself (its clean-up runs where it ran)."""
    handoff = queue.Queue(maxsize=depth)
    stop = threading.Event()
    done = object()

    def put(item):
        while not stop.is_set():
            try:
                return handoff.put(item, timeout=0.1)
            except queue.Full:
                continue

    def produce():
        try:
            for item in items:
                put((item, None))
                if stop.is_set():
                    return
            put((done, None))
        except BaseException as exc:  # handed to the caller, who raises it
            put((done, exc))
        finally:
            close = getattr(items, "close", None)
            if close is not None:
                close()

    def consume():
        while True:
            item, error = handoff.get()
            if error is not None:
                raise error
            if item is done:
                return
            yield item

    thread = threading.Thread(target=produce, name=name, daemon=True)
    thread.start()
    try:
        yield consume()
    finally:
        stop.set()
        while thread.is_alive():  # unblock a producer waiting on a full queue
            try:
                handoff.get(timeout=0.1)
            except queue.Empty:
                pass
        thread.join()
