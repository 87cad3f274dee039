"""The import job: one workflow for the web upload and `manage.py import_pairs`.

The file is read in batches; each batch's rows, its rejected rows and the reader's position
commit in one transaction, so an interrupted import resumes after the last committed batch.
"""

import os

from django.conf import settings
from django.db import transaction

from ..jobs import JobContext, JobFailed, job_runner
from ..models import Dataset
from .formats import FORMATS, RowError, detect_format, parse_record
from .readers import FileError, JsonlReader, sniff_container
from .writer import write_batch

# 2,000 records a transaction: large enough that COPY and the four INSERT … SELECTs dominate the
# per-batch overhead, small enough that a batch commits in well under a second.
BATCH_SIZE = 2000


def import_params(path, *, fmt="auto", domain=None, original_name=None, batch_size=BATCH_SIZE):
    if fmt != "auto" and fmt not in FORMATS:
        raise ValueError(f"unknown format {fmt!r}; expected auto or one of {', '.join(FORMATS)}")
    return {
        "path": str(path),
        "format": fmt,
        "domain": domain,
        "original_name": original_name or os.path.basename(str(path)),
        "batch_size": batch_size,
    }


@job_runner("import", unit="bytes")
def run_import(ctx: JobContext):
    params = ctx.params
    dataset = Dataset.objects.get(pk=ctx.job.dataset_id)
    path = params["path"]
    try:
        container = sniff_container(path)
        if container != "jsonl":
            raise FileError(f"{container} files are not supported yet")
        reader = JsonlReader(path, ctx.cursor.get("line", 0), ctx.cursor.get("offset", 0))
    except FileNotFoundError:
        raise JobFailed(f"{params['original_name']}: file not found") from None
    except FileError as exc:
        raise JobFailed(f"{params['original_name']}: {exc}") from None
    if not ctx.job.total:
        ctx.set_total(os.path.getsize(path))
    fmt = ctx.cursor.get("format") or (None if params["format"] == "auto" else params["format"])
    try:
        batch, errors = [], []
        for item in reader:
            if item.error:
                errors.append({"line": item.line, "reason": item.error})
            else:
                try:
                    if fmt is None:
                        fmt = detect_format(item.record)
                    batch.append(parse_record(
                        item.record, fmt, domain_override=params.get("domain"),
                        max_chars=settings.IMPORT_MAX_FIELD_CHARS,
                    ))
                except RowError as exc:
                    errors.append({"line": item.line, "reason": str(exc), "excerpt": _excerpt(item.record)})
            if len(batch) + len(errors) >= params.get("batch_size", BATCH_SIZE):
                _commit_batch(ctx, dataset, batch, errors, reader, fmt, params)
                batch, errors = [], []
        _commit_batch(ctx, dataset, batch, errors, reader, fmt, params)
    finally:
        reader.close()
    if ctx.counts.get("rows_read", 0) == 0 and not ctx.counts.get("rejected_rows"):
        raise JobFailed(f"{params['original_name']}: the file holds no records")


def _commit_batch(ctx, dataset, batch, errors, reader, fmt, params):
    with transaction.atomic():
        result = write_batch(dataset, batch, source=params["original_name"])
        counts = {
            "rows_read": len(batch) + len(errors),
            "imported_pairs": result.pairs,
            "imported_prompts": result.prompts,
            "imported_responses": result.responses,
            "imported_judgements": result.judgements,
            "duplicates": result.duplicates,
            "rejected_rows": len(errors),
            "by_domain": dict(result.by_domain),
            "unknown_domains": dict(result.unknown_domains),
        }
        ctx.commit(
            done=reader.raw_bytes_read() - ctx.job.done,
            counts=counts,
            cursor={**reader.position(), "format": fmt},
            errors=errors,
        )


def _excerpt(record, limit=300):
    text = repr(record)
    return text if len(text) <= limit else text[:limit] + "…"
