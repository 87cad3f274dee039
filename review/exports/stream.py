"""The selected pairs, streamed out of PostgreSQL by keyset (pair id order) in batches of
`ExportPair`, so memory stays flat whatever the size; a pair decided swapped, or that the reviews say is the
wrong way round, comes out swapped."""

import queue
import threading
from dataclasses import dataclass, field

import orjson
from django.db import connection, connections

from ..decisions import DECIDED_SQL
from .selection import REASON_SQL, query_cursor, sql_params

# 5,000 pairs a query: measured on 1M pairs, the keyset query and the Python formatting take
# about the same time per row from 2,000 up; larger batches only grow the memory held.
BATCH_SIZE = 5000


class Unrepresentable(Exception):
    """A pair the chosen format cannot express (the reason is counted in the manifest)."""


# The end of the next page of pair ids comes first, without the selection: with it, the planner
# misjudges how many rows pass the CASE, joins every pair after the cursor and sorts them (16 s a
# batch at 1M pairs); without it, it walks the primary key and stops after one page. The page's
# rows are then read by id range (an id list of 5,000 cost 10 ms of planning a batch).
PAGE_SQL = """
SELECT max(id) FROM (
    SELECT p.id FROM annotation_pair p WHERE p.dataset_id = %(dataset)s AND p.id > %(after)s ORDER BY p.id LIMIT %(batch)s
) AS page
"""

# Swapped: a decision's `swapped` status; else, for a pair no decision covers, more reviews finding the rejected
# response better than the chosen one.
STREAM_SQL = f"""
SELECT p.id, p.prompt_id, p.domain, p.status, pr.messages::text, c.id, c.text, c.model, r.id, r.text, r.model,
       p.chosen_score, p.rejected_score,
       CASE WHEN p.status = 'swapped' THEN true WHEN {DECIDED_SQL} THEN false
            ELSE COALESCE(rv.rejected_better > rv.chosen_better, false) END, rv.verdicts, rv.notes
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
WHERE p.dataset_id = %(dataset)s AND p.id > %(after)s AND p.id <= %(last)s AND ({{reason}}) = ''
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
    params = {**sql_params(dataset, sel), "after": 0, "batch": batch_size}
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
