"""Raw judgements out, as JSONL: one workflow for `manage.py export_judgements` and the download.

One line per judgement (every status, every rubric version), in the order they were stored.
The rows come through a server-side cursor in chunks, so memory stays flat however large the
dataset is. `cost` is a string holding the exact decimal (JSON numbers would round it);
`rubric_version` is null for scores imported from a file.
"""

import orjson

from .models import Judgement

FIELDS = (
    "prompt_id", "domain", "response_id", "response_hash", "generator_model", "judge", "rubric_version",
    "score", "status", "analysis", "input_tokens", "output_tokens", "cost", "latency_ms", "created_at",
)
_COLUMNS = (
    "response__prompt_id", "response__prompt__domain", "response_id", "response__content_hash", "response__model",
    "judge__name", "rubric__version", "score", "status", "analysis", "input_tokens", "output_tokens", "cost",
    "latency_ms", "created_at",
)
# Rows per server-side cursor fetch: a few MB of analyses at most, and few round trips.
CHUNK_SIZE = 2000


def dataset_judgements(dataset):
    return Judgement.objects.filter(response__dataset=dataset)


def judgement_lines(dataset, chunk_size=None):
    """Yield the dataset's judgements as JSONL lines (bytes, newline included)."""
    rows = dataset_judgements(dataset).order_by("pk").values_list(*_COLUMNS)
    rows = rows.iterator(chunk_size=chunk_size or CHUNK_SIZE)
    for row in rows:
        record = dict(zip(FIELDS, row))
        record["cost"] = str(record["cost"])
        yield orjson.dumps(record, option=orjson.OPT_APPEND_NEWLINE)
