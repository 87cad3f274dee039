"""Substring search over a dataset's prompts and responses, for the pair list and everything built on
PairFilter (`q=`), and the job that builds the filters it reads.

Matching is a case-insensitive `ILIKE '%…%'` (`LIKE` for queries without cased letters, which is the
same test). Two ways to find a page of matching pairs, chosen per query (`page`):

- Filtered: the search-index job that follows every import cuts the dataset's new prompts and responses,
  in id order, into blocks of 256 rows and stores per block a filter of the character trigrams its
  texts hold (review/search_blocks.py: hashed into 2^18 bits, built in numpy from `COPY` output, in
  segments of 65,536 rows). A query of three or more characters is looked up in every segment's
  filter; only the blocks that may hold it are read, with LIKE/ILIKE over their id ranges, so every
  match is found and only matches are shown. Used when the dataset has no rows newer than its filters
  and the candidate blocks hold at most VERIFY_ROWS rows with at most MAX_INDEXED_MATCHES matching
  texts (absent and rare words).
- Walk: the pairs in id order, joined to their texts, at most WALK_PAIRS per request. A common word
  (or any one- or two-character query, which has no trigram) fills a page after a few hundred pairs.
  When the walk reaches its bound first, the page shows what it found and says how far it searched;
  "continue" walks on from there (keyset `after=`), so no request reads a million texts.

`narrow` is the exact filter for selections that need every match (exports, the review queue,
audits); it reads only the candidate blocks where the filters allow it. Nothing here needs pg_trgm.

The job is cheap enough to follow every import: it reads each text once (COPY) and writes a bit matrix
per segment, where per-row GIN maintenance (the pg_trgm design before) cost ~600 s of backend CPU at
the 1M gen_pairs file and one CREATE INDEX of a GIN index per dataset about twice that (BENCHMARKS.md,
issue 17). Texts are never changed after import; a filter stays valid for its rows.
"""

import queue
import threading
from contextlib import contextmanager
from dataclasses import dataclass

import numpy as np
from django.db import connection, transaction
from django.db.models import BooleanField, F, Func, Max, Q, Value
from django.utils.translation import gettext_lazy as _
from django.utils.translation import pgettext_lazy

from annotation.jobs import FollowUp, JobContext, create_job, follows_imports, job_kind, running_job
from annotation.models import Prompt, Response

from . import search_blocks
from .models import SearchSegment

KIND = "search_index"
# Pairs one request walks at most (half as many for a query with cased letters, matched with ILIKE).
# An absent word costs a full walk: WALK_PAIRS × three texts, ~100 ms at 1M pairs of ~130-character
# texts, 300-600 ms for the ~1 KB texts of the gen_pairs file (BENCHMARKS.md).
WALK_PAIRS = 10_000
# Texts the filtered plan reads at most (the rows of its candidate blocks): about the walk's cost. A
# query whose trigrams are common passes more blocks than this, and the walk serves it.
VERIFY_ROWS = 16_384
# More matching texts than this and the walk, which stops at the first page, serves the query.
MAX_INDEXED_MATCHES = 1_000
TABLES = ((SearchSegment.Table.PROMPT, Prompt, "query"), (SearchSegment.Table.RESPONSE, Response, "text"))


class _ILike(Func):
    arg_joiner = " ILIKE "
    template = "(%(expressions)s)"
    output_field = BooleanField()


class _Like(_ILike):
    arg_joiner = " LIKE "


def like_pattern(text):
    escaped = text.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_")
    return f"%{escaped}%"


def _contains(column, text):
    # A query without cased letters (Chinese, digits, punctuation) matches the same texts with LIKE as
    # with ILIKE, and LIKE reads a text three times faster (1.3 against 4 µs for a 130-character
    # response, measured): most of a walk's cost.
    like = _Like if _is_caseless(text) else _ILike
    return Q(like(F(column), Value(like_pattern(text))))


def _is_caseless(text):
    return text.lower() == text.upper()


@dataclass
class SearchPage:
    ids: list  # ids of the matching pairs from `after` on, in order, at most `limit`
    walked_to: int | None = None  # the walk stopped at this pair id: pairs after it are not searched yet
    walked: int = 0  # pairs the walk read at most
    indexed: bool = False  # answered from the block filters: every match found


def page(pairs, dataset, text, after=None, limit=51):
    """The first `limit` matching pairs of `pairs` (filtered by everything but the search) after `after`."""
    if after:
        pairs = pairs.filter(pk__gt=after)
    matches = _filtered_matches(dataset, text)
    if matches is not None:
        prompt_ids, response_ids = matches
        found = pairs.filter(Q(prompt_id__in=prompt_ids) | Q(chosen_id__in=response_ids)
                             | Q(rejected_id__in=response_ids))
        return SearchPage(_first_ids(found, limit) if prompt_ids or response_ids else [], indexed=True)
    bound = WALK_PAIRS if _is_caseless(text) else WALK_PAIRS // 2  # ILIKE reads a text 3× slower
    window = list(pairs.order_by("pk").values_list("pk", flat=True)[bound - 1:bound])
    walked_to = window[0] if window else None
    if walked_to is not None:
        pairs = pairs.filter(pk__lte=walked_to)
    return SearchPage(_first_ids(_walk_filter(pairs, text), limit), walked_to=walked_to,
                      walked=bound if walked_to else 0)


def _first_ids(pairs, limit):
    with _nested_loops():
        return list(pairs.order_by("pk").values_list("pk", flat=True)[:limit])


@contextmanager
def _nested_loops():
    # The walk is a nested loop by design: pairs in id order, each pair's texts fetched by key, stopping
    # at `limit` matches. Under a filter (domain=code) the planner preferred hashing the whole prompt
    # table (a sequential scan) in parallel workers and JIT-compiled the plan: 280-410 ms at 1M pairs
    # where the nested loop takes tens (measured). None of that pays for a LIMIT that usually stops early.
    with transaction.atomic(), connection.cursor() as cursor:
        for setting in ("enable_hashjoin", "enable_mergejoin", "jit"):
            cursor.execute(f"SET LOCAL {setting} = off")
        cursor.execute("SET LOCAL max_parallel_workers_per_gather = 0")
        yield


def _filtered_matches(dataset, text):
    """(prompt ids, response ids) containing `text`, read from the candidate blocks of the dataset's
    filters; None when the filters cannot answer (query too short, dataset not fully indexed, too many
    candidate rows or matches)."""
    candidates = candidate_ranges(dataset, text)
    if candidates is None or not is_indexed(dataset):
        return None
    if sum(rows for _ranges, rows, _last in candidates.values()) > VERIFY_ROWS:
        return None
    found = []
    for table, model, column in TABLES:
        ranges = candidates[table][0]
        ids = []
        if ranges:
            rows = model.objects.filter(dataset=dataset).filter(_in_ranges(ranges)).filter(_contains(column, text))
            ids = list(rows.order_by().values_list("pk", flat=True)[:MAX_INDEXED_MATCHES + 1])
        if len(ids) > MAX_INDEXED_MATCHES:
            return None
        found.append(ids)
    return tuple(found)


def _in_ranges(ranges):
    condition = Q()
    for low, high in ranges:
        condition |= Q(pk__gte=low, pk__lte=high)
    return condition


def candidate_ranges(dataset, text):
    """Per table (prompt, response): (id ranges of the blocks that may hold `text`, rows in them, the
    last id the filters cover), or None when the query has no trigram the filters can use. Rows after
    the last covered id are not in any filter."""
    buckets = search_blocks.query_buckets(text, _is_caseless(text))
    if buckets is None:
        return None
    segments = list(SearchSegment.objects.filter(dataset=dataset).values(
        "pk", "table", "first_id", "last_id", "rows", "blocks", "block_rows"))
    result = {table: ([], 0, 0) for table, _model, _column in TABLES}
    if not segments:
        return result
    with connection.cursor() as cursor:
        # One row per (segment, bucket): the bucket's bits over the segment's blocks, read from the
        # out-of-line matrix without loading the rest of it.
        cursor.execute(
            "SELECT s.id, substring(s.filters FROM b.bucket * ((s.blocks + 7) / 8) + 1 FOR (s.blocks + 7) / 8) "
            "FROM review_searchsegment s CROSS JOIN unnest(%s::int[]) AS b(bucket) WHERE s.dataset_id = %s",
            [buckets, dataset.pk])
        rows_of = {}
        for segment_id, row in cursor.fetchall():
            rows_of.setdefault(segment_id, []).append(bytes(row))
    hits = {}
    for segment in segments:
        blocks = search_blocks.candidate_blocks(rows_of.get(segment["pk"], []), segment["blocks"])
        if blocks.size:
            hits[segment["pk"]] = blocks
    starts = dict(SearchSegment.objects.filter(pk__in=list(hits)).values_list("pk", "block_starts"))
    ranges = {table: [] for table, _model, _column in TABLES}
    rows = dict.fromkeys(ranges, 0)
    last = dict.fromkeys(ranges, 0)
    for segment in segments:
        table = segment["table"]
        last[table] = max(last[table], segment["last_id"])
        blocks = hits.get(segment["pk"])
        if blocks is None:
            continue
        first_ids = np.frombuffer(bytes(starts[segment["pk"]]), dtype="<i8")
        for block in blocks.tolist():
            high = int(first_ids[block + 1]) - 1 if block + 1 < segment["blocks"] else segment["last_id"]
            ranges[table].append((int(first_ids[block]), high))
            rows[table] += min(segment["block_rows"], segment["rows"] - block * segment["block_rows"])
    return {table: (_merged(ranges[table]), rows[table], last[table]) for table in ranges}


def _merged(ranges):
    """Sorted ranges with the touching ones joined (consecutive blocks of a segment)."""
    merged = []
    for low, high in sorted(ranges):
        if merged and low <= merged[-1][1] + 1:
            merged[-1] = (merged[-1][0], max(merged[-1][1], high))
        else:
            merged.append((low, high))
    return merged


def _walk_filter(pairs, text):
    return pairs.filter(_contains("prompt__query", text) | _contains("chosen__text", text)
                        | _contains("rejected__text", text))


# Above this many id ranges a narrowed selection reads every text of the dataset instead (one scan).
MAX_NARROW_RANGES = 500


def narrow(pairs, dataset, text):
    """Every pair whose prompt's query or whose chosen or rejected response contains `text`."""
    candidates = candidate_ranges(dataset, text)
    if candidates is None:
        return _walk_filter(pairs, text)
    subqueries = []
    for table, model, column in TABLES:
        rows = model.objects.filter(dataset=dataset).filter(_contains(column, text))
        ranges, _count, last = candidates[table]
        if len(ranges) <= MAX_NARROW_RANGES:  # the candidate blocks, and the rows no filter covers yet
            rows = rows.filter(_in_ranges(ranges) | Q(pk__gt=last))
        subqueries.append(rows.values("pk"))
    prompts, responses = subqueries
    return pairs.filter(Q(prompt_id__in=prompts) | Q(chosen_id__in=responses) | Q(rejected_id__in=responses))


def is_indexed(dataset):
    """Whether every prompt and response of the dataset is covered by its filters: no row is newer
    than the last the filters cover (the job covers a dataset's rows in id order, without gaps)."""
    covered = dict(SearchSegment.objects.filter(dataset=dataset).values("table").annotate(last=Max("last_id"))
                   .values_list("table", "last"))
    return not any(model.objects.filter(dataset=dataset, pk__gt=covered.get(table, 0)).exists()
                   for table, model, _column in TABLES)


def start(dataset, user):
    """The dataset's search-index job: the one under way, or a new one."""
    return running_job(dataset, KIND) or create_job(KIND, dataset=dataset, user=user)


# Every import is followed by a job that builds the filters of its texts, so the import itself does not
# maintain them.
follows_imports(FollowUp(KIND, what="search indexing", bar={"unit": "text", "desc": "search index"},
                         describe=lambda job: f"{job.done} texts added to the search filters (job {job.pk})"))


@job_kind(KIND, label=pgettext_lazy("job kind", "search indexing"), unit="texts", changes_data=False, counts={
    "prompts_indexed": _("Prompts indexed for search"),
    "responses_indexed": _("Responses indexed for search"),
})
def run_search_index(ctx: JobContext):
    """Build the block filters of the dataset's prompts and responses that no filter covers yet, a
    segment per transaction (review/search_blocks.py). Resumable: a re-run or a resumed job starts after
    the last segment committed; two jobs of one dataset take turns segment by segment."""
    dataset_id = ctx.job.dataset_id
    _analyze()
    bounds = ctx.cursor.get("bounds")
    if bounds is None:
        with transaction.atomic():
            bounds = _settled_bounds(dataset_id)
            ctx.set_total(sum(_uncovered(model, dataset_id, table, bounds[table]) for table, model, _c in TABLES))
            ctx.commit(cursor={"bounds": bounds})
    for table, model, column in TABLES:
        while _index_table(ctx, table, model, column, dataset_id, bounds[table]):
            pass  # another job of the dataset built a segment meanwhile: go on after it


_LOCK_KEY = 0x5EA2C4  # pg_advisory_xact_lock's first key: the search-index job's segments


def _index_table(ctx, table, model, column, dataset_id, bound):
    """Build the table's segments after the covered rows up to `bound`, each in its own transaction.
    Outside a transaction the next segment's rows are read (COPY, on a second connection in a thread:
    PostgreSQL's work) while this one's filters are built (numpy): the two cores overlap. Returns True
    when another job covered rows meanwhile (the caller starts again after them)."""
    after = _covered(dataset_id, table)
    reader = _RowReader(model, column, dataset_id, after, bound, threaded=not connection.in_atomic_block)
    try:
        for rows in reader:
            with transaction.atomic():
                with connection.cursor() as cursor:  # one job at a time writes this dataset's segments
                    cursor.execute("SELECT pg_advisory_xact_lock(%s, %s)", [_LOCK_KEY, dataset_id])
                if _covered(dataset_id, table) != after:
                    return True
                segment = _store_segment(table, dataset_id, after, rows)
                ctx.commit(done=segment.rows, counts={f"{table}s_indexed": segment.rows})
            after = segment.last_id
    finally:
        reader.close()
    return False


class _RowReader:
    """The table's rows of the dataset after `after` up to `bound`, a segment at a time, as
    search_blocks.split_copy_rows returns them; read ahead by one segment in a thread when `threaded`."""

    def __init__(self, model, column, dataset_id, after, bound, threaded):
        self.args = (model, column, dataset_id, bound)
        self.after = after
        self.queue = queue.Queue(maxsize=1) if threaded else None
        self.stop = threading.Event()
        self.thread = None
        if threaded:
            self.thread = threading.Thread(target=self._read_ahead, daemon=True, name="search-index reader")
            self.thread.start()

    def __iter__(self):
        while True:
            if self.queue is None:
                rows = _read_rows(*self.args, self.after)
            else:
                rows = self.queue.get()
                if isinstance(rows, BaseException):
                    raise rows
            if rows is None:
                return
            self.after = int(rows[0][-1])
            yield rows

    def _read_ahead(self):
        after = self.after
        try:
            while not self.stop.is_set():
                rows = _read_rows(*self.args, after)
                self._put(rows)
                if rows is None:
                    return
                after = int(rows[0][-1])
        except BaseException as error:  # handed to the job's thread, which fails the job with it
            self._put(error)
        finally:
            connection.close()  # this thread's own connection

    def _put(self, item):
        while not self.stop.is_set():
            try:
                return self.queue.put(item, timeout=0.5)
            except queue.Full:
                continue

    def close(self):
        if self.thread is not None:
            self.stop.set()
            self.thread.join()


def _settled_bounds(dataset_id):
    """The last prompt and response ids of the dataset, read when every row up to them is committed:
    SHARE mode waits for the transactions that are inserting into the tables (they hold ROW EXCLUSIVE
    from before they draw ids) and holds new ones back until this transaction ends, so no row with a
    smaller id commits later and falls behind the segments."""
    with connection.cursor() as cursor:
        cursor.execute("LOCK TABLE annotation_prompt, annotation_response IN SHARE MODE")
    return {table: model.objects.filter(dataset_id=dataset_id).aggregate(last=Max("pk"))["last"] or 0
            for table, model, _column in TABLES}


def _covered(dataset_id, table):
    return SearchSegment.objects.filter(dataset_id=dataset_id, table=table).aggregate(last=Max("last_id"))["last"] or 0


def _uncovered(model, dataset_id, table, bound):
    return model.objects.filter(dataset_id=dataset_id, pk__gt=_covered(dataset_id, table), pk__lte=bound).count()


def _read_rows(model, column, dataset_id, bound, after):
    """The next segment's rows after `after` (up to `bound`), read with COPY: search_blocks.split_copy_rows's
    (ids, row ends, bytes), or None when none is left."""
    if after >= bound:
        return None
    limit = search_blocks.BLOCK_ROWS * search_blocks.SEGMENT_BLOCKS
    sql = (f"COPY (SELECT id, {column} FROM {model._meta.db_table} WHERE dataset_id = {int(dataset_id)} "
           f"AND id > {int(after)} AND id <= {int(bound)} ORDER BY id LIMIT {limit}) TO STDOUT")
    data = bytearray()
    with connection.cursor() as cursor, cursor.cursor.copy(sql) as copy:
        for chunk in copy:
            data += chunk
    return search_blocks.split_copy_rows(data) if data else None


def _store_segment(table, dataset_id, after, rows):
    ids, row_ends, texts = rows
    block_rows = search_blocks.BLOCK_ROWS
    return SearchSegment.objects.create(
        dataset_id=dataset_id, table=table, first_id=after + 1, last_id=int(ids[-1]), rows=ids.size,
        blocks=(ids.size + block_rows - 1) // block_rows, block_rows=block_rows,
        bucket_bits=search_blocks.BUCKET_BITS, block_starts=ids[::block_rows].astype("<i8").tobytes(),
        filters=search_blocks.block_filters(texts, row_ends, block_rows).tobytes())


def _analyze():
    # Right after an import the planner's statistics predate its rows (autovacuum analyses later): it
    # then expects a few hundred pairs in a million-pair dataset, sorts them all instead of walking the
    # id index, and a 30 ms search page takes 500 ms (measured at 1M pairs). ANALYZE samples
    # 30,000 rows a table: about a second.
    with connection.cursor() as cursor:
        cursor.execute("ANALYZE annotation_prompt, annotation_response, annotation_pair")
