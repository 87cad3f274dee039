"""Compress long texts with lz4 instead of pglz where the server has it (PostgreSQL 14+ built with lz4):
a response over ~2 KB is compressed as it is imported, and lz4 took 0.5 s of server CPU where pglz took
0.8 s for 40,000 real responses, 7 % smaller on disk too (BENCHMARKS.md, issue 17). Only rows written
from now on; reading either kind is transparent. A server without lz4 keeps pglz."""

from django.db import migrations

COLUMNS = [("annotation_response", "text"), ("annotation_prompt", "query"), ("annotation_prompt", "messages")]


def _has_lz4(cursor):
    cursor.execute("SELECT 'lz4' = ANY(enumvals) FROM pg_settings WHERE name = 'default_toast_compression'")
    row = cursor.fetchone()
    return bool(row and row[0])


def _set(schema_editor, method):
    if schema_editor.connection.vendor != "postgresql":
        return
    with schema_editor.connection.cursor() as cursor:
        if not _has_lz4(cursor):
            return
        for table, column in COLUMNS:
            cursor.execute(f"ALTER TABLE {table} ALTER COLUMN {column} SET COMPRESSION {method}")


def use_lz4(apps, schema_editor):
    _set(schema_editor, "lz4")


def use_default(apps, schema_editor):
    _set(schema_editor, "default")


class Migration(migrations.Migration):

    dependencies = [("annotation", "0016_import_references_unchecked")]

    operations = [migrations.RunPython(use_lz4, use_default)]
