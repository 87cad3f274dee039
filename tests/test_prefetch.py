"""prefetched: items read in a thread ahead of the caller, on the thread's own database connection."""

import threading

import pytest
from django.db import connection

from annotation.ingest.prefetch import prefetched
from annotation.ingest.readers import FileError
from annotation.models import Dataset

from .conftest import wait_for


def _backend_alive(pid):
    with connection.cursor() as cursor:
        cursor.execute("SELECT count(*) FROM pg_stat_activity WHERE pid = %s", [pid])
        return cursor.fetchone()[0] == 1


def _backend_ends(pid):
    # A closed connection's backend leaves pg_stat_activity when its process exits, a moment later.
    wait_for(lambda: not _backend_alive(pid), timeout=10, message=f"backend {pid} to end")


def _names(seen):
    """The datasets' names, read on the connection of the thread iterating this; `seen` gets the thread's name
    and its PostgreSQL backend."""
    with connection.cursor() as cursor:
        cursor.execute("SELECT pg_backend_pid()")
        seen["backend"] = cursor.fetchone()[0]
    for dataset in Dataset.objects.order_by("pk").iterator(chunk_size=2):
        seen["thread"] = threading.current_thread().name
        yield dataset.name


def test_rows_are_read_in_the_thread_in_order_and_its_connection_is_closed(transactional_db):
    Dataset.objects.bulk_create([Dataset(name=f"set {i}") for i in range(7)])
    seen = {}
    with prefetched(_names(seen), name="test reader") as ahead:
        assert list(ahead) == [f"set {i}" for i in range(7)]
    assert seen["thread"] == "test reader" and seen["backend"] != connection.cursor().connection.info.backend_pid
    _backend_ends(seen["backend"])


def test_leaving_early_stops_the_thread_and_closes_its_connection(transactional_db):
    Dataset.objects.bulk_create([Dataset(name=f"set {i}") for i in range(50)])
    seen = {}
    with prefetched(_names(seen), depth=1) as ahead:
        assert next(ahead) == "set 0"
    assert not any(t.name == "prefetch" for t in threading.enumerate())
    _backend_ends(seen["backend"])


# The import reads its file this way (importer.py).
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
