"""Partial trigram indexes for the pair list's search (review/search.py), replacing prompt_query_trgm.

A GIN trigram index is maintained on every insert: on prompts it cost the 1M-pair import a third of
its rate (8,735 → 5,993 pairs/s), and on response texts it made the import many times slower. These
indexes cover only rows with `search_indexed` set, which an import leaves false, so inserting costs
them nothing; the search-index job that follows every import sets the flag chunk by chunk and pays
for the index there. Made only where pg_trgm can be created (not the embedded server of `make demo`);
search works without them, walking the pairs instead.
"""

from django.db import DatabaseError, migrations, transaction

INDEXES = {
    "prompt_query_trgm_indexed": "annotation_prompt USING gin (query gin_trgm_ops) WHERE search_indexed",
    "response_text_trgm_indexed": "annotation_response USING gin (text gin_trgm_ops) WHERE search_indexed",
}
REPLACED = {"prompt_query_trgm": "annotation_prompt USING gin (query gin_trgm_ops)"}


def _has_trigram(cursor, connection):
    if connection.vendor != "postgresql":
        return False
    cursor.execute("SELECT 1 FROM pg_available_extensions WHERE name = 'pg_trgm'")
    if cursor.fetchone() is None:
        return False
    try:
        with transaction.atomic(using=connection.alias):
            cursor.execute("CREATE EXTENSION IF NOT EXISTS pg_trgm")
    except DatabaseError:  # no privilege to create it: search stays unindexed
        return False
    return True


def _swap(schema_editor, drop, create):
    with schema_editor.connection.cursor() as cursor:
        if not _has_trigram(cursor, schema_editor.connection):
            return
        for name in drop:
            cursor.execute(f"DROP INDEX IF EXISTS {name}")
        for name, definition in create.items():
            cursor.execute(f"CREATE INDEX IF NOT EXISTS {name} ON {definition}")


def create_partial_indexes(apps, schema_editor):
    _swap(schema_editor, REPLACED, INDEXES)


def restore_prompt_index(apps, schema_editor):
    _swap(schema_editor, INDEXES, REPLACED)


class Migration(migrations.Migration):

    dependencies = [
        ("annotation", "0007_search_indexed"),
        ("review", "0006_review_updated_at"),
    ]

    operations = [migrations.RunPython(create_partial_indexes, restore_prompt_index)]
