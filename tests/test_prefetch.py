"""prefetched: items read in a thread ahead of the caller (the import's reading thread)."""

import threading

import pytest

from annotation.ingest.prefetch import prefetched
from annotation.ingest.readers import FileError


def test_the_reading_threads_error_is_raised_in_the_import():
    def items():
        yield 1
        raise FileError("the archive is damaged")

    got = []
    with pytest.raises(FileError, match="damaged"), prefetched(items(), name="import-reader") as ready:
        for item in ready:
            got.append(item)
    assert got == [1]
    assert not any(t.name == "import-reader" for t in threading.enumerate())


def test_the_reading_thread_stays_at_most_a_few_batches_ahead_and_stops_with_the_import():
    produced = []

    def items():
        for i in range(1000):
            produced.append(i)
            yield i

    with prefetched(items(), depth=2, name="import-reader") as ready:
        assert next(ready) == 0
        threading.Event().wait(0.3)  # let it run ahead as far as it may
        assert len(produced) <= 4  # the one handed over, two queued, one waiting to be
    assert len(produced) <= 4 and not any(t.name == "import-reader" for t in threading.enumerate())
