"""Exports: the audited pairs as training files, with a manifest and a dataset card beside them.

One workflow for the web form and `manage.py export_pairs`: `create_export` records what was
asked, the `export` job runs `write_export`, which streams the selected pairs out of PostgreSQL by
keyset (pair id order) into one writer per split, so memory stays flat whatever the size.

Selection, in one SQL expression (`REASON_SQL`), so the counts in the manifest and the rows in
the files cannot disagree:
- by default a pair is exported when its status is pending or kept and no review excludes it: a
  review with the verdict both_bad, or one saying the better response is incorrect
  (better_correct false), excludes the pair;
- `statuses` picks other pair statuses (review exclusions still apply); `all` exports every
  pair, with no exclusion at all;
- a pair whose reviews say "rejected is better" more often than "chosen is better" is exported
  swapped (also under `all`); a tie between the two verdicts leaves it as it is;
- domains, a minimum panel gap (chosen score minus rejected score, before any swap; pairs without
  scores fail it) and a row limit (the first rows in pair id order).

The split is made by prompt: within each domain the selected prompts are ordered by
md5(prompt id, seed) and the first round(n × (1 − split)) go to test (halves round up), so no prompt is in both
splits and each domain is split in the same proportion.
"""

import hashlib
import queue
import threading
from collections import Counter
from dataclasses import asdict, dataclass, field
from pathlib import Path

import orjson
from django.conf import settings
from django.db import connection, connections, transaction
from django.utils.translation import gettext_lazy as _
from django.utils.translation import ngettext_lazy, pgettext_lazy

from annotation.csv_cells import CsvCells
from annotation.jobs import JobContext, JobFailed, Tally, counted, create_job, job_kind
from annotation.models import Domain, Job, RewardModel

from .export_manifest import build_manifest, dataset_card, query_cursor
from .models import Export

FORMATS = ("sharegpt", "trl", "trl-chat", "openrlhf", "alpaca", "csv", "parquet")
JSONL_FORMATS = ("sharegpt", "trl", "trl-chat", "openrlhf", "alpaca")
EXTENSIONS = {"csv": ".csv", "parquet": ".parquet"}
DEFAULT_STATUSES = ("pending", "kept")
STATUS_ALL = "all"

# 5,000 pairs a query: measured on 1M pairs, the keyset query and the Python formatting take
# about the same time per row from 2,000 up; larger batches only grow the memory held.
BATCH_SIZE = 5000
# Parquet row groups of 5,000 rows (one batch; about 7 MB of text in the benchmark) keep the writer's
# buffer bounded: measured at 100k pairs, 10,000 rows took the process from 268 to 276 MB peak RSS.
PARQUET_ROW_GROUP = 5_000


class ExportError(Exception):
    """The export as asked cannot be made; the message says why."""


class Unrepresentable(Exception):
    """A pair the chosen format cannot express (the reason is counted in the manifest)."""


@dataclass
class Selection:
    statuses: list = field(default_factory=lambda: list(DEFAULT_STATUSES))
    domains: list = field(default_factory=list)
    min_gap: float | None = None
    split: float | None = None
    seed: int = 0
    limit: int | None = None
    with_meta: bool = False
    bom: bool = False
    raw_csv: bool = False

    @property
    def everything(self):
        return STATUS_ALL in self.statuses

    @classmethod
    def from_params(cls, params):
        known = {k: params[k] for k in cls.__dataclass_fields__ if k in params}
        return cls(**known)

    def check(self):
        unknown = set(self.statuses) - {STATUS_ALL, "pending", "kept", "filtered", "withdrawn"}
        if unknown or not self.statuses:
            raise ExportError(f"unknown status {sorted(unknown)}; expected all or pair statuses such as pending, kept")
        bad_domains = set(self.domains) - set(Domain.values)
        if bad_domains:
            raise ExportError(f"unknown domain {sorted(bad_domains)}; expected some of {', '.join(Domain.values)}")
        if self.split is not None and not 0 < self.split < 1:
            raise ExportError(f"split is the train fraction, strictly between 0 and 1; got {self.split}")
        if self.limit is not None and self.limit < 1:
            raise ExportError(f"limit must be at least 1; got {self.limit}")


def file_names(fmt, stem, ext=None, split=None):
    """{split or "all": file name} of an export's data files."""
    ext = ext or EXTENSIONS.get(fmt, ".jsonl")
    if split is None:
        return {"all": f"{stem}{ext}"}
    return {"train": f"{stem}_train{ext}", "test": f"{stem}_test{ext}"}


def side_file_names(fmt):
    return ["manifest.json", "README.md"] + (["dataset_info.json"] if fmt == "sharegpt" else [])


def create_export(dataset, fmt, selection, *, user=None, out_dir=None, stem="pairs", ext=None, enqueue=True):
    """Record an export and its job. Web exports go under MEDIA_ROOT/exports/<id>/ and run on a
    worker (`enqueue`); the CLI names its own directory and runs the job itself."""
    if fmt not in FORMATS:
        raise ExportError(f"unknown format {fmt!r}; expected one of {', '.join(FORMATS)}")
    selection.check()
    with transaction.atomic():
        export = Export.objects.create(dataset=dataset, format=fmt, created_by=user, params={})
        directory = Path(out_dir) if out_dir else Path(settings.MEDIA_ROOT) / "exports" / str(export.pk)
        export.params = {**asdict(selection), "out_dir": str(directory), "stem": stem, "ext": ext}
        export.job = create_job("export", dataset=dataset, user=user, params={"export_id": export.pk},
                                enqueue_it=enqueue)
        export.save(update_fields=["params", "job"])
    return export


# Every selected pair is an item; one the format cannot express (skipped, reason in the manifest) is a failure.
EXPORT_TALLY = Tally(
    items=counted("rows", "skipped"), failures=counted("skipped"),
    summary=ngettext_lazy("%(failed)s of %(items)s pair skipped (the format cannot express it)",
                          "%(failed)s of %(items)s pairs skipped (the format cannot express them)", "n"),
)


# Its skipped pairs are listed in the manifest, not as job errors; the job page shows its files.
@job_kind("export", label=pgettext_lazy("job kind", "export"), unit="pairs", changes_data=False, tally=EXPORT_TALLY,
          counts={"rows": _("Pairs written"), "skipped": _("Pairs skipped"), "swapped": _("Pairs swapped by a review")},
          errors_heading=None, page_section="review/_export_job.html")
def run_export(ctx: JobContext):
    export = Export.objects.select_related("dataset").get(pk=ctx.params["export_id"])
    if ctx.cursor or ctx.counts:
        # A file cannot be resumed mid-row group: an interrupted export starts over and rewrites its files.
        ctx.counts, ctx.cursor, ctx.job.done = {}, {}, 0
        Job.objects.filter(pk=ctx.job.pk).update(counts={}, cursor={}, done=0)
    try:
        write_export(export, ctx)
    except ExportError as exc:
        raise JobFailed(str(exc)) from None


# --------------------------------------------------------------------------------------------
# Selection in SQL

# Why a pair is left out, or '' when it is exported. %(everything)s turns every exclusion off.
REASON_SQL = """
CASE
  WHEN %(everything)s THEN ''
  WHEN NOT (p.status = ANY(%(statuses)s)) THEN 'status:' || p.status
  WHEN EXISTS (SELECT 1 FROM review_review v WHERE v.pair_id = p.id AND v.verdict = 'both_bad')
    THEN 'review:both_bad'
  WHEN EXISTS (SELECT 1 FROM review_review v WHERE v.pair_id = p.id AND v.better_correct = false)
    THEN 'review:incorrect'
  ELSE '' END
|| CASE
  WHEN %(has_domains)s AND NOT (p.domain = ANY(%(domains)s)) THEN '|domain'
  WHEN %(has_min_gap)s AND NOT COALESCE(p.chosen_score - p.rejected_score >= %(min_gap)s, false) THEN '|min_gap'
  ELSE '' END
"""


def _sql_params(dataset, sel):
    return {
        "dataset": dataset.pk,
        "everything": sel.everything,
        "statuses": [s for s in sel.statuses if s != STATUS_ALL],
        "has_domains": bool(sel.domains),
        "domains": list(sel.domains),
        "has_min_gap": sel.min_gap is not None,
        "min_gap": sel.min_gap if sel.min_gap is not None else 0.0,
        "seed": str(sel.seed),
    }


def exclusion_counts(dataset, sel):
    """(selected pairs, {reason: pairs left out}); a pair left out for two reasons counts under the first."""
    sql = f"SELECT ({REASON_SQL}) AS reason, count(*) FROM annotation_pair p WHERE p.dataset_id = %(dataset)s GROUP BY 1"
    with query_cursor() as cursor:
        cursor.execute(sql, _sql_params(dataset, sel))
        rows = cursor.fetchall()
    selected, excluded = 0, Counter()
    for reason, n in rows:
        # 'status:filtered|domain' counts under its first reason; '' is a selected pair.
        first = reason.lstrip("|").split("|")[0]
        if first:
            excluded[first] += n
        else:
            selected += n
    return selected, dict(excluded)


def test_prompt_ids(dataset, sel):
    """The prompts that go to the test split: per domain, the first round(n × (1 − split)) by seeded hash."""
    sql = f"""
        WITH selected AS (
            SELECT DISTINCT p.prompt_id, p.domain FROM annotation_pair p
            WHERE p.dataset_id = %(dataset)s AND ({REASON_SQL}) = ''
        ), ranked AS (
            SELECT prompt_id,
                   row_number() OVER (PARTITION BY domain ORDER BY md5(prompt_id::text || ':' || %(seed)s)) AS rank,
                   count(*) OVER (PARTITION BY domain) AS n
            FROM selected
        )
        SELECT prompt_id FROM ranked WHERE rank <= round((n * %(test_fraction)s)::numeric)"""
    params = {**_sql_params(dataset, sel), "test_fraction": 1 - sel.split}
    with query_cursor() as cursor:
        cursor.execute(sql, params)
        return {row[0] for row in cursor.fetchall()}


# The end of the next page of pair ids comes first, without the selection: with it, the planner
# misjudges how many rows pass the CASE, joins every pair after the cursor and sorts them (16 s a
# batch at 1M pairs); without it, it walks the primary key and stops after one page. The page's
# rows are then read by id range (an id list of 5,000 cost 10 ms of planning a batch).
PAGE_SQL = """
SELECT max(id) FROM (
    SELECT p.id FROM annotation_pair p WHERE p.dataset_id = %(dataset)s AND p.id > %(after)s ORDER BY p.id LIMIT %(batch)s
) AS page
"""

STREAM_SQL = """
SELECT p.id, p.prompt_id, p.domain, p.status, pr.messages::text, c.id, c.text, c.model, r.id, r.text, r.model,
       p.chosen_score, p.rejected_score,
       COALESCE(rv.rejected_better > rv.chosen_better, false), rv.verdicts, rv.notes
FROM annotation_pair p
JOIN annotation_prompt pr ON pr.id = p.prompt_id
JOIN annotation_response c ON c.id = p.chosen_id
JOIN annotation_response r ON r.id = p.rejected_id
LEFT JOIN LATERAL (
    SELECT count(*) FILTER (WHERE v.verdict = 'rejected_better') AS rejected_better,
           count(*) FILTER (WHERE v.verdict = 'chosen_better') AS chosen_better,
           array_agg(v.verdict ORDER BY v.id) AS verdicts,
           array_agg(v.note ORDER BY v.id) AS notes
    FROM review_review v WHERE v.pair_id = p.id
) rv ON true
WHERE p.dataset_id = %(dataset)s AND p.id > %(after)s AND p.id <= %(last)s AND ({reason}) = ''
ORDER BY p.id
"""


@dataclass(slots=True)
class ExportPair:
    pair_id: int
    prompt_id: int
    domain: str
    status: str
    messages: list
    chosen_id: int
    chosen: str
    chosen_model: str
    rejected_id: int
    rejected: str
    rejected_model: str
    chosen_score: float | None
    rejected_score: float | None
    swapped: bool
    verdicts: list
    notes: list
    meta: dict = field(default_factory=dict)

    @classmethod
    def from_row(cls, row):
        (pair_id, prompt_id, domain, status, messages, chosen_id, chosen, chosen_model, rejected_id, rejected,
         rejected_model, chosen_score, rejected_score, swapped, verdicts, notes) = row
        pair = cls(pair_id, prompt_id, domain, status, orjson.loads(messages), chosen_id, chosen, chosen_model,
                   rejected_id, rejected, rejected_model, chosen_score, rejected_score, swapped, verdicts or [],
                   notes or [])
        if pair.swapped:
            pair.chosen_id, pair.rejected_id = pair.rejected_id, pair.chosen_id
            pair.chosen, pair.rejected = pair.rejected, pair.chosen
            pair.chosen_model, pair.rejected_model = pair.rejected_model, pair.chosen_model
            pair.chosen_score, pair.rejected_score = pair.rejected_score, pair.chosen_score
        return pair

    def system(self):
        return next((m["content"] for m in self.messages if m["role"] == "system"), "")

    def turns(self):
        """Every message of the prompt but the system one; the last is the query."""
        return [m for m in self.messages if m["role"] != "system"]

    def history_pairs(self):
        """Earlier turns as [[query, answer], …], for formats that only know that shape."""
        history = self.turns()[:-1]
        roles = [m["role"] for m in history]
        if roles != ["user", "assistant"] * (len(history) // 2):
            raise Unrepresentable("history is not alternating user/assistant turns")
        return [[history[i]["content"], history[i + 1]["content"]] for i in range(0, len(history), 2)]


def stream_pairs(dataset, sel, batch_size=None):
    """Batches of ExportPair in pair id order, one keyset query each. The next batch is fetched on a
    second connection while this one is formatted (PostgreSQL and Python then use both cores: at
    100k pairs the queries took 3.7 s and the formatting 2.8 s), except inside a caller's
    transaction, whose rows another connection could not see."""
    batches = _row_batches(dataset, sel, batch_size or BATCH_SIZE)
    if not connection.in_atomic_block:
        batches = _prefetched(batches)
    for rows in batches:
        yield [ExportPair.from_row(row) for row in rows]


def _row_batches(dataset, sel, batch_size):
    params = {**_sql_params(dataset, sel), "after": 0, "batch": batch_size}
    sql = STREAM_SQL.format(reason=REASON_SQL)
    while True:
        with query_cursor() as cursor:
            cursor.execute(PAGE_SQL, params)
            params["last"] = cursor.fetchone()[0]
            if params["last"] is None:
                return
            cursor.execute(sql, params)
            rows = cursor.fetchall()
        if rows:
            yield rows
        params["after"] = params["last"]


_END = object()


def _prefetched(iterator, depth=1):
    """Run `iterator` in a thread (with its own database connection), `depth` items ahead."""
    items = queue.Queue(maxsize=depth)
    stop = threading.Event()

    def put(item):
        while not stop.is_set():
            try:
                items.put(item, timeout=0.2)
                return True
            except queue.Full:
                continue
        return False

    def work():
        try:
            for item in iterator:
                if not put(item):
                    return
            put(_END)
        except BaseException as exc:  # handed to the consumer, raised there
            put(exc)
        finally:
            connections.close_all()

    thread = threading.Thread(target=work, name="export-prefetch", daemon=True)
    thread.start()
    try:
        while (item := items.get()) is not _END:
            if isinstance(item, BaseException):
                raise item
            yield item
    finally:
        stop.set()
        thread.join()


# --------------------------------------------------------------------------------------------
# Metadata columns

def current_reward_model(dataset):
    """The reward model whose scores the margins use: the newest that scored this dataset."""
    return (
        RewardModel.objects.filter(scores__response__dataset=dataset).distinct().order_by("-created_at", "-pk").first()
    )


def add_meta(batch, reward_model):
    """Per-judge scores, reward margin and reviews for a batch, in two queries."""
    response_ids = [p.chosen_id for p in batch] + [p.rejected_id for p in batch]
    scores = {}
    with query_cursor() as cursor:
        # The newest judgement of each judge (a rescoring with a new rubric replaces the old score).
        cursor.execute(
            """SELECT DISTINCT ON (jm.response_id, jm.judge_id) jm.response_id, j.name, jm.score
               FROM annotation_judgement jm JOIN annotation_judge j ON j.id = jm.judge_id
               WHERE jm.response_id = ANY(%s) AND jm.status = 'ok'
               ORDER BY jm.response_id, jm.judge_id, jm.created_at DESC, jm.id DESC""",
            [response_ids],
        )
        for response_id, judge, score in cursor.fetchall():
            scores.setdefault(response_id, {})[judge] = score
        rewards = {}
        if reward_model is not None:
            cursor.execute(
                "SELECT response_id, reward FROM annotation_rewardscore WHERE reward_model_id = %s AND response_id = ANY(%s)",
                [reward_model.pk, response_ids],
            )
            rewards = dict(cursor.fetchall())
    for p in batch:
        gap = None if p.chosen_score is None or p.rejected_score is None else p.chosen_score - p.rejected_score
        margin = None
        if p.chosen_id in rewards and p.rejected_id in rewards:
            margin = rewards[p.chosen_id] - rewards[p.rejected_id]
        p.meta = {
            "pair_id": p.pair_id,
            "status": p.status,
            "chosen_model": p.chosen_model,
            "rejected_model": p.rejected_model,
            "chosen_scores": dict(sorted(scores.get(p.chosen_id, {}).items())),
            "rejected_scores": dict(sorted(scores.get(p.rejected_id, {}).items())),
            "panel_gap": gap,
            "reward_margin": margin,
            "review_verdicts": list(p.verdicts),
            "review_notes": [n for n in p.notes if n],
            "swapped": p.swapped,
        }


# --------------------------------------------------------------------------------------------
# Formats: each is the exact inverse of the importer's reading of it (annotation/ingest/formats.py).

def sharegpt_record(p):
    """LLaMA-Factory sharegpt ranking: conversations (human/gpt), chosen/rejected turns, system."""
    conversations = [{"from": "human" if m["role"] == "user" else "gpt", "value": m["content"]} for m in p.turns()]
    return {
        "conversations": conversations,
        "chosen": {"from": "gpt", "value": p.chosen},
        "rejected": {"from": "gpt", "value": p.rejected},
        "system": p.system(),
        "domain": p.domain,
    }


def trl_record(p):
    """TRL standard preference: strings; system and [[query, answer]] history in their own keys."""
    return {
        "prompt": p.turns()[-1]["content"],
        "chosen": p.chosen,
        "rejected": p.rejected,
        "system": p.system(),
        "history": p.history_pairs(),
        "domain": p.domain,
    }


def chat_record(p):
    """TRL conversational preference with an explicit prompt; the same rows OpenRLHF reads with
    --prompt_key prompt --chosen_key chosen --rejected_key rejected --apply_chat_template."""
    return {
        "prompt": [{"role": m["role"], "content": m["content"]} for m in p.messages],
        "chosen": [{"role": "assistant", "content": p.chosen}],
        "rejected": [{"role": "assistant", "content": p.rejected}],
        "domain": p.domain,
    }


def alpaca_record(p):
    """Alpaca ranking as LLaMA-Factory reads it: instruction (the query), input, chosen, rejected."""
    return {
        "instruction": p.turns()[-1]["content"],
        "input": "",
        "chosen": p.chosen,
        "rejected": p.rejected,
        "system": p.system(),
        "history": p.history_pairs(),
        "domain": p.domain,
    }


RECORD_BUILDERS = {
    "sharegpt": sharegpt_record,
    "trl": trl_record,
    "trl-chat": chat_record,
    "openrlhf": chat_record,
    "alpaca": alpaca_record,
}

META_COLUMNS = ["pair_id", "status", "chosen_model", "rejected_model", "chosen_scores", "rejected_scores",
                "panel_gap", "reward_margin", "review_verdicts", "review_notes", "swapped"]
CSV_COLUMNS = ["domain", "system", "history", "prompt", "chosen", "rejected"]


class JsonlWriter:
    def __init__(self, path, fmt, sel):
        self.file = open(path, "wb", buffering=1 << 20)
        self.build = RECORD_BUILDERS[fmt]

    def write(self, p):
        record = self.build(p)
        if p.meta:
            record.update(p.meta)
        self.file.write(orjson.dumps(record) + b"\n")

    def close(self):
        self.file.close()


class CsvWriter:
    """UTF-8 CSV; with `bom`, a byte-order mark first so Excel in a Chinese locale reads UTF-8. Cells a
    spreadsheet would run as formulas are neutralised unless `raw_csv` (annotation/csv_cells.py)."""

    def __init__(self, path, fmt, sel):
        self.file = open(path, "w", encoding="utf-8-sig" if sel.bom else "utf-8", newline="", buffering=1 << 20)
        self.writer = CsvCells(self.file, raw=sel.raw_csv)
        self.with_meta = sel.with_meta
        self.writer.writerow(CSV_COLUMNS + (META_COLUMNS if sel.with_meta else []))

    def write(self, p):
        history = [{"role": m["role"], "content": m["content"]} for m in p.turns()[:-1]]
        row = [p.domain, p.system(), orjson.dumps(history).decode() if history else "", p.turns()[-1]["content"],
               p.chosen, p.rejected]
        if self.with_meta:
            row += [_csv_cell(p.meta[c]) for c in META_COLUMNS]
        self.writer.writerow(row)

    def close(self):
        self.file.close()


def _csv_cell(value):
    if value is None:
        return ""
    if isinstance(value, (dict, list)):
        return orjson.dumps(value).decode()
    return value


class ParquetWriter:
    """TRL conversational columns (prompt, chosen, rejected as {role, content} lists), domain, and
    the metadata columns; written in row groups so memory stays bounded. Columns are built as flat
    Arrow arrays (offsets, roles, contents), not from a dict per row, which is several times faster."""

    def __init__(self, path, fmt, sel):
        import pyarrow as pa
        import pyarrow.parquet as pq

        self.pa = pa
        self.message = pa.struct([("role", pa.string()), ("content", pa.string())])
        self.scores = pa.struct([("judge", pa.string()), ("score", pa.float64())])
        fields = [("prompt", pa.list_(self.message)), ("chosen", pa.list_(self.message)),
                  ("rejected", pa.list_(self.message)), ("domain", pa.string())]
        if sel.with_meta:
            fields += [("pair_id", pa.int64()), ("status", pa.string()), ("chosen_model", pa.string()),
                       ("rejected_model", pa.string()), ("chosen_scores", pa.list_(self.scores)),
                       ("rejected_scores", pa.list_(self.scores)), ("panel_gap", pa.float64()),
                       ("reward_margin", pa.float64()), ("review_verdicts", pa.list_(pa.string())),
                       ("review_notes", pa.list_(pa.string())), ("swapped", pa.bool_())]
        self.schema = pa.schema(fields)
        self.writer = pq.ParquetWriter(path, self.schema, compression="zstd")
        self.with_meta = sel.with_meta
        self.pairs = []

    def write(self, p):
        self.pairs.append(p)
        if len(self.pairs) >= PARQUET_ROW_GROUP:
            self.flush()

    def _messages(self, lists):
        pa = self.pa
        offsets, roles, contents = [0], [], []
        for messages in lists:
            for m in messages:
                roles.append(m["role"])
                contents.append(m["content"])
            offsets.append(len(roles))
        values = pa.StructArray.from_arrays([pa.array(roles, pa.string()), pa.array(contents, pa.string())],
                                            fields=list(self.message))
        return pa.ListArray.from_arrays(pa.array(offsets, pa.int32()), values)

    def _answers(self, texts):
        pa = self.pa
        values = pa.StructArray.from_arrays(
            [pa.array(["assistant"] * len(texts), pa.string()), pa.array(texts, pa.string())], fields=list(self.message)
        )
        return pa.ListArray.from_arrays(pa.array(range(len(texts) + 1), pa.int32()), values)

    def flush(self):
        if not self.pairs:
            return
        pa, pairs = self.pa, self.pairs
        columns = [self._messages(p.messages for p in pairs), self._answers([p.chosen for p in pairs]),
                   self._answers([p.rejected for p in pairs]), pa.array([p.domain for p in pairs], pa.string())]
        if self.with_meta:
            meta = [p.meta for p in pairs]
            for name in META_COLUMNS:
                field_type = self.schema.field(name).type
                values = [m[name] for m in meta]
                if name.endswith("_scores"):
                    values = [[{"judge": j, "score": s} for j, s in v.items()] for v in values]
                columns.append(pa.array(values, field_type))
        self.writer.write_batch(pa.RecordBatch.from_arrays(columns, schema=self.schema))
        self.pairs = []

    def close(self):
        self.flush()
        self.writer.close()


def open_writer(path, fmt, sel):
    if fmt == "csv":
        return CsvWriter(path, fmt, sel)
    if fmt == "parquet":
        return ParquetWriter(path, fmt, sel)
    return JsonlWriter(path, fmt, sel)


# --------------------------------------------------------------------------------------------
# The workflow

def write_export(export, ctx=None):
    """Write the export's data files, manifest, card (and dataset_info.json for sharegpt)."""
    dataset = export.dataset
    sel = Selection.from_params(export.params)
    sel.check()
    directory = export.directory()
    directory.mkdir(parents=True, exist_ok=True)
    names = file_names(export.format, export.params["stem"], export.params.get("ext"), sel.split)
    selected, excluded = exclusion_counts(dataset, sel)
    total = min(selected, sel.limit) if sel.limit else selected
    if ctx:
        ctx.set_total(total)
    test_ids = test_prompt_ids(dataset, sel) if sel.split is not None else None
    reward_model = current_reward_model(dataset) if sel.with_meta else None
    writers = {split: open_writer(directory / name, export.format, sel) for split, name in names.items()}
    rows, by_domain, skipped = Counter(), {split: Counter() for split in names}, Counter()
    swapped = written = 0
    batches = stream_pairs(dataset, sel)
    try:
        for batch in batches:
            if sel.limit:
                batch = batch[: sel.limit - written]
            if sel.with_meta:
                add_meta(batch, reward_model)
            batch_counts = Counter()
            for p in batch:
                split = "all" if test_ids is None else ("test" if p.prompt_id in test_ids else "train")
                try:
                    writers[split].write(p)
                except Unrepresentable as exc:
                    skipped[str(exc)] += 1
                    batch_counts["skipped"] += 1
                    continue
                rows[split] += 1
                by_domain[split][p.domain] += 1
                batch_counts["rows"] += 1
                batch_counts["swapped"] += p.swapped
            written += batch_counts["rows"]
            swapped += batch_counts["swapped"]
            if ctx and batch:
                with transaction.atomic():
                    ctx.commit(done=len(batch), counts=dict(batch_counts), cursor={"after": batch[-1].pair_id})
            if sel.limit and written >= sel.limit:
                break
    finally:
        batches.close()  # stops the prefetching thread at once on cancel or error
        for writer in writers.values():
            writer.close()
    files = [_describe(directory, name, split, rows[split]) for split, name in names.items()]
    counts = {
        "rows": written,
        "by_split": dict(rows),
        "by_domain": dict(sum(by_domain.values(), Counter())),
        "by_split_domain": {split: dict(c) for split, c in by_domain.items()},
        "selected_before_limit": selected,
        "excluded": excluded,
        "swapped": swapped,
        "skipped": dict(skipped),
    }
    if export.format == "csv":
        counts["neutralised_cells"] = sum(w.writer.neutralised for w in writers.values())
    manifest = build_manifest(export, sel, counts, files)
    (directory / "manifest.json").write_bytes(orjson.dumps(manifest, option=orjson.OPT_INDENT_2))
    (directory / "README.md").write_text(dataset_card(export, manifest), encoding="utf-8")
    side = [{"name": "manifest.json", "kind": "manifest"}, {"name": "README.md", "kind": "card"}]
    if export.format == "sharegpt":
        info = dataset_info(dataset.name, names)
        (directory / "dataset_info.json").write_bytes(orjson.dumps(info, option=orjson.OPT_INDENT_2))
        side.append({"name": "dataset_info.json", "kind": "dataset_info"})
    export.files = files + side
    export.manifest = manifest
    export.save(update_fields=["files", "manifest"])
    return export


def _describe(directory, name, split, rows):
    digest = hashlib.sha256()
    path = directory / name
    with open(path, "rb") as f:
        while chunk := f.read(1 << 20):
            digest.update(chunk)
    return {"name": name, "kind": "data", "split": split, "rows": rows, "bytes": path.stat().st_size,
            "sha256": digest.hexdigest()}


def dataset_info(name, names):
    """The LLaMA-Factory dataset_info.json entries registering the sharegpt ranking file(s)."""
    entry = {
        "formatting": "sharegpt",
        "ranking": True,
        "columns": {"messages": "conversations", "chosen": "chosen", "rejected": "rejected", "system": "system"},
        "tags": {"role_tag": "from", "content_tag": "value", "user_tag": "human", "assistant_tag": "gpt"},
    }
    key = _slug(name)
    if set(names) == {"all"}:
        return {key: {"file_name": names["all"], **entry}}
    return {f"{key}_{split}": {"file_name": file_name, **entry} for split, file_name in names.items()}


def _slug(name):
    slug = "".join(ch if ch.isalnum() else "_" for ch in name.lower()).strip("_")
    return slug or "dataset"
