"""The import job: one workflow for the web upload and `manage.py import_pairs`.

The file is read in batches; each batch's rows, its rejected rows and the reader's position
commit in one transaction, so an interrupted import resumes after the last committed batch. A thread
reads, parses and hashes the next batches (`prefetch.prefetched`) while the job's own thread writes the current
one, so on two cores Python's share of the work hides behind PostgreSQL's.
"""

import os
import time
from dataclasses import dataclass
from pathlib import Path

from django.conf import settings
from django.db import transaction
from django.utils.translation import gettext_lazy as _
from django.utils.translation import ngettext_lazy, pgettext_lazy

from ..jobs import JobContext, JobFailed, Tally, counted, job_kind, start_follow_ups
from ..models import Dataset, Job
from .formats import FORMATS, PairRecord, RowError, detect_format, parse_record
from .hub import HubError, download, parquet_urls, parse_hub_id
from .prefetch import prefetched
from .readers import CONTAINERS, FileError, JsonArrayReader, JsonlReader, Limits, sniff_container
from .tabular import CsvReader, ParquetReader, check_header, name_column, parse_columns, to_record
from .writer import BatchRows, batch_rows, write_batch

# 5,000 records a transaction: each batch costs about 13 round trips, and at each the job's thread may wait for
# the GIL the reading thread holds while PostgreSQL idles. 100k gen_pairs rows, three alternating runs: 9.0-11.4 s
# against 9.6-11.7 s with 2,000 (3-6 % each time), peak RSS 224 against 147 MB; 10,000 gained nothing more for
# 350 MB (BENCHMARKS.md, issue 17, session 7). A batch still commits in well under a second.
BATCH_SIZE = 5000
# A batch also ends once its records hold this many characters of text, so that a file of huge rows (fields
# up to IMPORT_MAX_FIELD_CHARS each) holds a bounded amount in memory, not BATCH_SIZE of them: gen_pairs rows
# (~1,000 characters) fill 5,000 records with ~5M, so ordinary files never reach it.
BATCH_CHARS = 16_000_000


# The reading thread gives the GIL away every READ_YIELD_EVERY records, long enough for the job's thread to take
# it: otherwise the job's thread, woken by each of PostgreSQL's replies, waits up to the interpreter's 5 ms switch
# interval while this thread parses, and the server idles meanwhile. 100k gen_pairs rows, three alternating runs:
# the backend idle 2.0-2.1 against 2.9-3.1 s, wall 10.2-10.5 against 10.5-11.4 s (BENCHMARKS.md, issue 17).
READ_YIELD_EVERY = 32
READ_YIELD_SECONDS = 0.0001


# --format names a row format (the container is sniffed) or a container (the row format is detected).
FORMAT_CHOICES = ("auto", *FORMATS, *CONTAINERS)


def import_params(path, *, fmt="auto", domain=None, original_name=None, batch_size=BATCH_SIZE, columns=""):
    """The job's params; ValueError with a one-line reason for a bad format or column mapping."""
    if fmt not in FORMAT_CHOICES:
        raise ValueError(f"unknown format {fmt!r}; expected one of {', '.join(FORMAT_CHOICES)}")
    return {
        "path": str(path),
        "format": fmt if fmt in FORMATS else "auto",
        "container": fmt if fmt in CONTAINERS else None,
        "columns": parse_columns(columns),
        "domain": domain,
        "original_name": original_name or os.path.basename(str(path)),
        "batch_size": batch_size,
    }


def hub_import_params(hub_id, *, split="train", config=None, limit=None, fmt="auto", domain=None,
                      batch_size=BATCH_SIZE, columns=""):
    """The params of an import from a Hugging Face Hub dataset (downloaded by the job itself)."""
    repo_id = parse_hub_id(hub_id)
    if fmt not in FORMAT_CHOICES or fmt in CONTAINERS and fmt != "parquet":
        raise ValueError(f"format {fmt!r} does not apply to a Hub dataset (read as Parquet); expected one of "
                         f"auto, {', '.join(FORMATS)}")
    if limit is not None and limit < 1:
        raise ValueError(f"the limit must be a positive number of rows, got {limit}")
    params = import_params("", fmt=fmt if fmt in FORMATS else "auto", domain=domain, batch_size=batch_size,
                           columns=columns, original_name=f"hf://{repo_id} ({split})")
    params.update(path=None, container="parquet",
                  hub={"id": repo_id, "split": split, "config": config or None, "limit": limit})
    return params


# Every row read is an item; a rejected row is a failure (an import that rejected every row failed).
IMPORT_TALLY = Tally(
    items=counted("rows_read"), failures=counted("rejected_rows"),
    summary=ngettext_lazy("%(failed)s of %(items)s row rejected", "%(failed)s of %(items)s rows rejected", "n"),
)


IMPORT_COUNTS = {
    "rows_read": _("Rows read"),
    "imported_pairs": _("Pairs created"),
    "imported_prompts": _("Prompts created"),
    "imported_responses": _("Responses created"),
    "imported_judgements": _("Judge scores created"),
    "duplicates": _("Duplicate pairs (skipped)"),
    "rejected_rows": _("Rejected rows"),
    "dropped_responses": _("Responses left out"),
    "downloaded_bytes": _("Bytes downloaded"),
}


@job_kind("import", label=pgettext_lazy("job kind", "import"), unit="bytes", counts=IMPORT_COUNTS,
          tally=IMPORT_TALLY)
def run_import(ctx: JobContext):
    params = ctx.params
    dataset = Dataset.objects.get(pk=ctx.job.dataset_id)
    mapping = params.get("columns") or {}
    try:
        if params.get("hub"):
            _fetch_hub_files(ctx, params["hub"])
        reader = open_reader(params, ctx.cursor)
    except HubError as exc:
        raise JobFailed(f"Hugging Face dataset {exc}") from None
    except FileNotFoundError:
        raise JobFailed(f"{params['original_name']}: file not found") from None
    except FileError as exc:
        raise JobFailed(f"{params['original_name']}: {exc}") from None
    # Table rows always go through the column mapping; JSON records only when one is given.
    tabular = isinstance(reader, (CsvReader, ParquetReader)) or bool(mapping)
    if not ctx.job.total:
        ctx.set_total(reader.total_bytes())
    fmt = ctx.cursor.get("format") or (None if params["format"] == "auto" else params["format"])
    batches = _read_batches(reader, params, mapping, tabular, fmt)
    try:
        with prefetched(batches, name="import-reader") as ready:
            for batch in ready:
                _commit_batch(ctx, dataset, batch, params)
    finally:
        reader.close()
    if reader.problem:  # the content stopped early: what was read before is committed, the job says why
        if not ctx.counts.get("imported_pairs") and not ctx.counts.get("imported_prompts"):
            raise JobFailed(f"{params['original_name']}: {reader.problem}; no complete row came before it")
        # The rows before the cut are real data: the job ends with problems, and its follow-ups run on them.
        ctx.problem = (f"{params['original_name']}: {reader.problem}; every complete row before that point "
                       "was imported")
    if ctx.counts.get("dropped_responses"):  # rows imported without some of their responses
        ctx.problem = " ".join(filter(None, [ctx.problem, _dropped_note(ctx.counts["dropped_responses"])]))
    if ctx.counts.get("rows_read", 0) == 0 and not ctx.counts.get("rejected_rows"):
        raise JobFailed(f"{params['original_name']}: the file holds no records")
    if ctx.outcome() == Job.Status.FAILED:
        return  # every row was rejected: nothing for a follow-up job to look at
    # Hook: the jobs registered to follow an import (near-duplicate and contamination flags, the search
    # indexes), so that the import itself maintains neither; params may skip one or leave it to the CLI.
    start_follow_ups(ctx.job)


def open_reader(params, cursor):
    """The reader for the job's file, positioned after the rows the cursor says were committed."""
    path = params["path"]
    row = cursor.get("row", 0)
    if params.get("hub"):
        path = cursor["files"]
    limits = Limits.from_settings()
    container = params.get("container") or sniff_container(path, limits)
    if container == "jsonl":
        return JsonlReader(path, cursor.get("line", 0), cursor.get("offset", 0), limits)
    if container == "json":
        return JsonArrayReader(path, row, limits)
    if container == "csv":
        reader = CsvReader(path, row, limits)
    else:
        reader = ParquetReader(path, row, limit=(params.get("hub") or {}).get("limit"))
    try:
        check_header(reader.columns, params.get("columns") or {}, f"the {container.upper()} file")
    except FileError:
        reader.close()
        raise
    return reader


# Download progress is committed every this many bytes (it also lets a cancel request through).
DOWNLOAD_REPORT_BYTES = 8 << 20


def _fetch_hub_files(ctx, hub):
    """Download the split's Parquet files, as many as the limit needs, unless a previous attempt
    did; their paths go into the cursor. Files already complete on disk are not fetched again."""
    if ctx.cursor.get("files") and all(os.path.exists(p) for p in ctx.cursor["files"]):
        return
    import pyarrow.parquet as pq

    directory = Path(settings.MEDIA_ROOT) / "imports" / f"hub-job-{ctx.job.pk}"
    directory.mkdir(parents=True, exist_ok=True)
    unreported = 0

    def report(n):
        nonlocal unreported
        unreported += n
        if unreported >= DOWNLOAD_REPORT_BYTES:
            with transaction.atomic():
                ctx.commit(counts={"downloaded_bytes": unreported})
            unreported = 0

    files, rows = [], 0
    for index, url in enumerate(parquet_urls(hub["id"], hub["split"], hub.get("config"))):
        path = directory / f"{index:05d}.parquet"
        if not path.exists():
            download(hub["id"], url, path, on_bytes=report)
        files.append(str(path))
        try:
            rows += pq.ParquetFile(path).metadata.num_rows
        except Exception as exc:  # pyarrow raises several kinds for a damaged file
            raise HubError(f"{hub['id']}: {url} is not a readable Parquet file ({exc})") from None
        if hub.get("limit") and rows >= hub["limit"]:
            break
    with transaction.atomic():
        ctx.commit(counts={"downloaded_bytes": unreported}, cursor={"files": files, "row": 0})


def _dropped_note(n):
    return (f"{n} response(s) were left out of rows whose other responses were imported; "
            "they are listed with the rejected rows.")


@dataclass
class ReadBatch:
    """Up to a batch's worth of rows as the reading thread hands them over, with where the reader stood
    after them (the job's cursor once they commit)."""
    rows: BatchRows
    read: int  # rows read, rejected ones included
    errors: list
    dropped: list
    position: dict
    bytes_read: int
    fmt: str | None


def _text_chars(record):
    """Characters of a parsed record's texts: its messages' and its responses'."""
    texts = [message.get("content") or "" for message in record.messages]
    if isinstance(record, PairRecord):
        texts += [record.chosen, record.rejected]
    else:
        texts += [text for _model, text, _scores in record.responses]
    return sum(len(text) for text in texts if isinstance(text, str))


def _read_batches(reader, params, mapping, tabular, fmt):
    """Parse the reader's records into ReadBatches (no database access: this runs in the reading thread)."""
    batch, errors, dropped = [], [], []
    batch_size = params.get("batch_size", BATCH_SIZE)
    chars = 0
    for n, item in enumerate(reader, 1):
        if n % READ_YIELD_EVERY == 0:
            time.sleep(READ_YIELD_SECONDS)
        if item.error:
            errors.append({"line": item.line, "reason": item.error})
        else:
            try:
                record = to_record(item.record, mapping) if tabular else item.record
                if fmt is None:
                    fmt = detect_format(record)
                parsed = parse_record(record, fmt, domain_override=params.get("domain"),
                                      max_chars=settings.IMPORT_MAX_FIELD_CHARS)
                batch.append(parsed)
                chars += _text_chars(parsed)
                dropped += [{"line": item.line, "reason": f"{reason} (this response was left out; the row's other "
                             "responses were imported)"} for reason in getattr(parsed, "dropped", ())]
            except RowError as exc:
                reason = name_column(str(exc), mapping) if tabular else str(exc)
                errors.append({"line": item.line, "reason": reason, "excerpt": _excerpt(item.record)})
        if len(batch) + len(errors) >= batch_size or chars >= BATCH_CHARS:
            yield ReadBatch(batch_rows(batch), len(batch) + len(errors), errors, dropped, reader.position(),
                            reader.raw_bytes_read(), fmt)
            batch, errors, dropped, chars = [], [], [], 0
    yield ReadBatch(batch_rows(batch), len(batch) + len(errors), errors, dropped, reader.position(),
                    reader.raw_bytes_read(), fmt)


def _commit_batch(ctx, dataset, batch, params):
    with transaction.atomic():
        result = write_batch(dataset, batch.rows, source=params["original_name"])
        counts = {
            "rows_read": batch.read,
            "imported_pairs": result.pairs,
            "imported_prompts": result.prompts,
            "imported_responses": result.responses,
            "imported_judgements": result.judgements,
            "duplicates": result.duplicates,
            "rejected_rows": len(batch.errors),
            "dropped_responses": len(batch.dropped),
            "by_domain": dict(result.by_domain),
            "prompts_by_domain": dict(result.prompts_by_domain),
            "unknown_domains": dict(result.unknown_domains),
        }
        ctx.commit(
            done=batch.bytes_read - ctx.job.done,
            counts=counts,
            cursor={**ctx.cursor, **batch.position, "format": batch.fmt},
            errors=batch.errors + batch.dropped,
        )


def _excerpt(record, limit=300):
    text = repr(record)
    return text if len(text) <= limit else text[:limit] + "…"
