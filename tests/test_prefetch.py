"""prefetched: items read in a thread ahead of the caller, on the thread's own database connection."""

import threading

import pytest
from django.db import connection

from annotation.ingest.prefetch import prefetched
from annotation.models import Dataset


def _open_connections():
    with connection.cursor() as cursor:
        cursor.execute("SELECT count(*) FROM pg_stat_activity WHERE datname = current_database()")
        return cursor.fetchone()[0]


def _names(readers):
    for dataset in Dataset.objects.order_by("pk").iterator(chunk_size=2):
        readers.add(threading.current_thread().name)
        yield dataset.name


def test_rows_are_read_in_the_thread_in_order_and_its_connection_is_closed(transactional_db):
    Dataset.objects.bulk_create([Dataset(name=f"set {i}") for i in range(7)])
    before, readers = _open_connections(), set()
    with prefetched(_names(readers), name="test reader") as ahead:
        assert list(ahead) == [f"set {i}" for i in range(7)]
    assert readers == {"test reader"}
    assert _open_connections() == before


def test_leaving_early_stops_the_thread_and_closes_its_connection(transactional_db):
    Dataset.objects.bulk_create([Dataset(name=f"set {i}") for i in range(50)])
    before = _open_connections()
    with prefetched(_names(set()), depth=1) as ahead:
        assert next(ahead) == "set 0"
    assert not any(t.name == "prefetch" for t in threading.enumerate())
    assert _open_connections() == before


def test_an_error_in_the_thread_is_raised_in_the_caller():
    def failing():
        yield 1
        raise ValueError("line 2 is broken")

    with pytest.raises(ValueError, match="line 2 is broken"):
        with prefetched(failing()) as ahead:
            assert list(ahead) == [1]
