"""Content hashes of the exact text (issue 14), and no index the import maintains for nothing (issue 17).

Prompts and responses were keyed by a hash of their NFKC-folded, whitespace-collapsed text, so a
later text that differed only in width or spacing was stored as an earlier one. The key is now the
hash of the text exactly as stored (annotation.ingest.formats.text_hash / messages_hash); this
re-hashes the stored rows so that importing a file again still finds them. Rows merged before
cannot be told apart any more: the text kept is the first one imported; importing the file again
adds the variants as rows of their own.

No two rows of one key can collide: two stored texts with equal exact hashes would have had equal
normalised hashes too, and been one row. The hash is written out here (not imported) so that the
migration keeps meaning what it meant when it was written.

The foreign-key indexes dropped here lead with the same column as a unique index of the same table
(prompt_unique_hash, response_unique_hash, pair_unique, response_dataset_model), which serves every
lookup they served; each cost the import one index insertion per row.
"""

import json
import uuid
from hashlib import blake2b

import django.db.models.deletion
from django.db import migrations, models

CHUNK = 10000


def _hash(data):
    return str(uuid.UUID(bytes=blake2b(data.encode(), digest_size=16).digest()))


def _prompt_hash(messages):
    if isinstance(messages, str):
        messages = json.loads(messages)
    return _hash("\x1e".join(f"{m['role']}\x1f{m['content']}" for m in messages))


def _rehash(cursor, table, column, hash_of):
    last = 0
    while True:
        cursor.execute(f"SELECT id, {column}, content_hash FROM {table} WHERE id > %s ORDER BY id LIMIT %s",
                       [last, CHUNK])
        rows = cursor.fetchall()
        if not rows:
            return
        last = rows[-1][0]
        changed = [(pk, new) for pk, value, old in rows if (new := hash_of(value)) != str(old)]
        if changed:
            cursor.execute(
                f"UPDATE {table} t SET content_hash = v.h FROM unnest(%s::bigint[], %s::uuid[]) AS v(id, h) "
                "WHERE t.id = v.id",
                [[pk for pk, _h in changed], [h for _pk, h in changed]],
            )


def rehash(apps, schema_editor):
    with schema_editor.connection.cursor() as cursor:
        _rehash(cursor, "annotation_prompt", "messages", _prompt_hash)
        _rehash(cursor, "annotation_response", "text", _hash)


class Migration(migrations.Migration):

    dependencies = [
        ("annotation", "0012_pair_status_swapped"),
    ]

    # Backwards the exact hashes stay: folding them again could join rows that are now distinct.
    operations = [
        migrations.RunPython(rehash, migrations.RunPython.noop),
        migrations.AlterField(
            model_name="pair",
            name="prompt",
            field=models.ForeignKey(db_index=False, on_delete=django.db.models.deletion.CASCADE, related_name="pairs",
                                    to="annotation.prompt"),
        ),
        migrations.AlterField(
            model_name="prompt",
            name="dataset",
            field=models.ForeignKey(db_index=False, on_delete=django.db.models.deletion.CASCADE, related_name="prompts",
                                    to="annotation.dataset"),
        ),
        migrations.AlterField(
            model_name="response",
            name="dataset",
            field=models.ForeignKey(db_index=False, on_delete=django.db.models.deletion.CASCADE,
                                    related_name="responses", to="annotation.dataset"),
        ),
        migrations.AlterField(
            model_name="response",
            name="prompt",
            field=models.ForeignKey(db_index=False, on_delete=django.db.models.deletion.CASCADE,
                                    related_name="responses", to="annotation.prompt"),
        ),
    ]
