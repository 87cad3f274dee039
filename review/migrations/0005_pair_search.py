"""Trigram indexes for the pair list's substring search (review/search.py).

pg_trgm ships with PostgreSQL's contrib and is a trusted extension (PostgreSQL 13+), so the database
owner may create it; the embedded server of `make demo` (pgserver) does not ship it. The indexes are
made only where the extension can be created, and search works (unindexed) without them. They are
not Meta.indexes: those would fail on a server without pg_trgm.

Only prompts are indexed. A trigram GIN index on response texts (~500 CJK characters each, hundreds of
trigrams a row) made inserts so slow that a 1M-pair import would take far longer than its benchmark
allows (200k texts: over 8 minutes with the index, against seconds without); response search is
unindexed until a search structure is built after imports (an open item of the dashboards issue).
"""

from django.db import DatabaseError, migrations, transaction

INDEXES = {
    "prompt_query_trgm": "annotation_prompt USING gin (query gin_trgm_ops)",
}


def create_trigram_indexes(apps, schema_editor):
    if schema_editor.connection.vendor != "postgresql":
        return
    with schema_editor.connection.cursor() as cursor:
        cursor.execute("SELECT 1 FROM pg_available_extensions WHERE name = 'pg_trgm'")
        if cursor.fetchone() is None:
            return
        try:
            with transaction.atomic(using=schema_editor.connection.alias):
                cursor.execute("CREATE EXTENSION IF NOT EXISTS pg_trgm")
        except DatabaseError:  # no privilege to create it: search stays unindexed
            return
        for name, definition in INDEXES.items():
            cursor.execute(f"CREATE INDEX IF NOT EXISTS {name} ON {definition}")


def drop_trigram_indexes(apps, schema_editor):
    if schema_editor.connection.vendor != "postgresql":
        return
    with schema_editor.connection.cursor() as cursor:
        for name in INDEXES:
            cursor.execute(f"DROP INDEX IF EXISTS {name}")


class Migration(migrations.Migration):

    dependencies = [
        ("annotation", "0005_near_duplicates"),
        ("review", "0004_queue_and_audits"),
    ]

    operations = [migrations.RunPython(create_trigram_indexes, drop_trigram_indexes)]
