"""Substring search over a dataset's prompts and responses, for the pair list and everything built on
PairFilter (`q=`), and the job that indexes a dataset's texts for it.

Matching is a case-insensitive `ILIKE '%…%'` (`LIKE` for queries without cased letters, which is the
same test). Two ways to find a page of matching pairs, chosen per query (`page`):

- Indexed: a pg_trgm GIN index answers `ILIKE` without reading every text. pg_trgm splits text into
  trigrams of "word" characters; under the C.UTF-8 and zh_CN.UTF-8 ctypes Chinese characters are word
  characters, so a Chinese query of three or more characters has trigrams to look up. The indexes are
  partial (`WHERE search_indexed`, review/migrations/0007_search_index.py): an import inserts rows
  unindexed, at full speed, and the search-index job that follows it sets the flag and pays for the
  index. Used when the query has a trigram, the dataset is fully indexed and the query is rare enough
  (at most MAX_INDEXED_MATCHES texts); then every matching pair is found exactly.
- Walk: the pairs in id order, joined to their texts, at most WALK_PAIRS per request. A common word
  (or any one- or two-character query, which has no trigram) fills a page after a few hundred pairs.
  When the walk reaches its bound first, the page shows what it found and says how far it searched;
  "continue" walks on from there (keyset `after=`), so no request reads a million texts.

`narrow` is the exact filter for selections that need every match (exports, the review queue,
audits); it uses the same indexes where it can. Without pg_trgm (the embedded PostgreSQL of
`make demo`) search walks, and the job only sets the flags.
"""

from contextlib import contextmanager
from dataclasses import dataclass

from django.db import connection, transaction
from django.db.models import BooleanField, F, Func, Q, Value
from django.utils.translation import gettext_lazy as _
from django.utils.translation import pgettext_lazy

from annotation.jobs import FollowUp, JobContext, create_job, follows_imports, job_kind, running_job
from annotation.models import Prompt, Response

KIND = "search_index"
# Below this many characters a query has no trigram for the index to use.
TRIGRAM = 3
# Pairs one request walks at most (half as many for a query with cased letters, matched with ILIKE).
# An absent word costs a full walk: WALK_PAIRS × three texts, ~100 ms at 1M pairs (BENCHMARKS.md).
WALK_PAIRS = 10_000
# More matching texts than this and the index plan is the slow one (it must recheck every match
# before the first page), so the walk, which stops at the first page, serves the query instead.
MAX_INDEXED_MATCHES = 1_000
# Texts flagged (and added to the GIN indexes) per chunk of the job: 125 chunks at 1M pairs (620k
# texts), the whole job 70 s at load 2.5 (BENCHMARKS.md), so about half a second a chunk.
INDEX_BATCH = 5_000


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
    indexed: bool = False  # answered from the trigram indexes


def page(pairs, dataset, text, after=None, limit=51):
    """The first `limit` matching pairs of `pairs` (filtered by everything but the search) after `after`."""
    if after:
        pairs = pairs.filter(pk__gt=after)
    if len(text) >= TRIGRAM and trigram_indexes_exist() and is_indexed(dataset):
        prompt_ids = _matching_ids(Prompt, "query", dataset, text)
        response_ids = _matching_ids(Response, "text", dataset, text)
        if prompt_ids is not None and response_ids is not None:
            found = pairs.filter(Q(prompt_id__in=prompt_ids) | Q(chosen_id__in=response_ids)
                                 | Q(rejected_id__in=response_ids))
            return SearchPage(_first_ids(found, limit), indexed=True)
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


def _matching_ids(model, column, dataset, text):
    """Ids of the indexed rows whose `column` contains `text`, or None when there are too many."""
    rows = model.objects.filter(dataset=dataset, search_indexed=True).filter(_contains(column, text))
    with _nested_loops():
        ids = list(rows.values_list("pk", flat=True)[:MAX_INDEXED_MATCHES + 1])
    return None if len(ids) > MAX_INDEXED_MATCHES else ids


def _walk_filter(pairs, text):
    return pairs.filter(_contains("prompt__query", text) | _contains("chosen__text", text)
                        | _contains("rejected__text", text))


def narrow(pairs, dataset, text):
    """Every pair whose prompt's query or whose chosen or rejected response contains `text`."""
    if len(text) < TRIGRAM:
        return _walk_filter(pairs, text)
    prompts = Prompt.objects.filter(dataset=dataset).filter(_contains("query", text))
    responses = Response.objects.filter(dataset=dataset).filter(_contains("text", text))
    if is_indexed(dataset):  # lets the planner use the partial trigram indexes
        prompts, responses = prompts.filter(search_indexed=True), responses.filter(search_indexed=True)
    responses = responses.values("pk")
    return pairs.filter(Q(prompt_id__in=prompts.values("pk")) | Q(chosen_id__in=responses)
                        | Q(rejected_id__in=responses))


def trigram_indexes_exist():
    with connection.cursor() as cursor:
        cursor.execute("SELECT count(*) FROM pg_indexes WHERE indexname IN "
                       "('prompt_query_trgm_indexed', 'response_text_trgm_indexed')")
        return cursor.fetchone()[0] == 2


def is_indexed(dataset):
    """Whether every prompt and response of the dataset is in the search indexes (partial btree
    indexes on the unindexed rows make this two index probes)."""
    return not (Prompt.objects.filter(dataset=dataset, search_indexed=False).exists()
                or Response.objects.filter(dataset=dataset, search_indexed=False).exists())


def start(dataset, user):
    """The dataset's search-index job: the one under way, or a new one."""
    return running_job(dataset, KIND) or create_job(KIND, dataset=dataset, user=user)


# Every import is followed by a job that adds its texts to the indexes, so the import itself does not
# maintain them.
follows_imports(FollowUp(KIND, what="search indexing", bar={"unit": "text", "desc": "search index"},
                         describe=lambda job: f"{job.done} texts added to the search indexes (job {job.pk})"))


@job_kind(KIND, label=pgettext_lazy("job kind", "search indexing"), unit="texts", changes_data=False, counts={
    "prompts_indexed": _("Prompts indexed for search"),
    "responses_indexed": _("Responses indexed for search"),
})
def run_search_index(ctx: JobContext):
    """Flag the dataset's unindexed prompts and responses, a chunk per transaction; the partial GIN
    indexes take the flagged rows in. Idempotent: a re-run or a resumed job flags what is left."""
    dataset_id = ctx.job.dataset_id
    _analyze()
    if not ctx.job.total:
        ctx.set_total(sum(model.objects.filter(dataset_id=dataset_id, search_indexed=False).count()
                          for model in (Prompt, Response)))
    for model, key in ((Prompt, "prompts_indexed"), (Response, "responses_indexed")):
        while True:
            with transaction.atomic():
                unflagged = model.objects.filter(dataset_id=dataset_id, search_indexed=False)
                # search_indexed=False again outside the subquery: a second job of the same dataset that
                # waited on these rows' locks skips what the first flagged instead of counting it twice.
                chunk = unflagged.order_by("pk").values("pk")[:INDEX_BATCH]
                flagged = unflagged.filter(pk__in=chunk).update(search_indexed=True)
                if not flagged:
                    break
                ctx.commit(done=flagged, counts={key: flagged})
    _vacuum()


def _analyze():
    # Right after an import the planner's statistics predate its rows (autovacuum analyses later): it
    # then expects a few hundred pairs in a million-pair dataset, sorts them all instead of walking the
    # id index, and a 30 ms search page takes 500 ms (measured at 1M pairs). ANALYZE samples
    # 30,000 rows a table: about a second.
    with connection.cursor() as cursor:
        cursor.execute("ANALYZE annotation_prompt, annotation_response, annotation_pair")


def _vacuum():
    # Flagging a row writes a new version of it (no HOT update: the flag is in the partial indexes), so
    # the job leaves as many dead rows as it indexed. Until they are vacuumed every walk reads past
    # them: at 1M pairs (620k texts) search pages took 3-4 times as long after the job as before it
    # (measured with autovacuum off). VACUUM cannot run inside a transaction (a test's), so there
    # the statistics are only refreshed.
    if connection.in_atomic_block:
        return _analyze()
    with connection.cursor() as cursor:
        cursor.execute("VACUUM (ANALYZE) annotation_prompt, annotation_response")
