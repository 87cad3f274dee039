"""Write a batch of parsed records into PostgreSQL.

A batch finds out which of its prompts, responses and pairs the dataset has already, by index probes
(a `LATERAL` subquery per key over `unnest` of the batch's keys, which the planner can neither flatten
nor turn inside out, whatever its statistics say; a prompt's probe reads one index entry per dataset
that holds the same prompt, see PROMPT_PROBE), gives the new rows ids from the
tables' sequences in one statement, and COPYs them straight into the tables. So each text is written
once, a batch reads only its own rows and costs the same in an empty dataset and in one of a million
pairs, and writing the same batch twice adds nothing. Only a prompt the dataset had before can have
responses already, and only two old responses can make an old pair, so most batches probe little.
Call inside a transaction: `lock_dataset_rows` holds off every other writer of the dataset's prompts,
responses and pairs (another import, pair building) from the probes to the commit.

History: the first writer joined a staging table with the dataset's prompts, and the planner, with
statistics older than the import, hashed every prompt of the dataset per batch (issue 17: 707 s for 1M
pairs); the second staged every table and moved rows with INSERT … ON CONFLICT, writing each text twice
(BENCHMARKS.md, issue 17).
"""

import struct
from collections import Counter
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta

import orjson
import psycopg
from django.db import connection
from django.utils import timezone

from ..models import Judge
from .formats import PairRecord, messages_key, utf8_key

# pg_advisory_xact_lock's first key for "rows are being added to dataset N" (the second key is N).
DATASET_ROWS_LOCK = 1_700_001

# Which of a batch's prompt hashes the dataset has. The subquery names only the hash (OFFSET 0 keeps the
# dataset's condition out of it), so only prompt_unique_hash (content_hash, dataset_id) can serve it: an
# index that leads with the dataset, read for a new dataset the statistics call empty, would be walked
# whole for every probe.
# Rows come back by their key's position in the array (an int, where a uuid would be loaded as an object).
PROMPT_PROBE = """SELECT k.i, p.id, p.domain FROM unnest(%s::uuid[]) WITH ORDINALITY AS k(h, i) CROSS JOIN LATERAL (
                      SELECT id, domain, dataset_id FROM annotation_prompt WHERE content_hash = k.h OFFSET 0) p
                  WHERE p.dataset_id = %s"""
RESPONSE_PROBE = """SELECT k.i, r.id FROM unnest(%s::bigint[], %s::uuid[]) WITH ORDINALITY AS k(p, h, i)
                    CROSS JOIN LATERAL (SELECT id FROM annotation_response
                                        WHERE prompt_id = k.p AND content_hash = k.h LIMIT 1) r"""
PAIR_PROBE = """SELECT k.p, k.c, k.r FROM unnest(%s::bigint[], %s::bigint[], %s::bigint[]) AS k(p, c, r)
                CROSS JOIN LATERAL (SELECT FROM annotation_pair WHERE prompt_id = k.p
                                    AND chosen_id = k.c AND rejected_id = k.r LIMIT 1) x"""

# Every row goes in COPY's binary format: no escaping of the texts in Python and no parsing of numbers, hashes
# and times in the server (40,000 real responses: 0.13 against 0.47 s of importer CPU, 0.63 against 0.92 s of
# backend CPU; BENCHMARKS.md, issue 17). A row is its field count, then each field as its length and its bytes
# (varchar takes text's form, jsonb a version byte before the JSON text). The reading thread encodes each
# prompt's and response's own fields (`batch_rows`); the writer packs the ids in front, in the columns' order
# below, so the job's thread spends its time waiting on PostgreSQL rather than formatting rows.
COPY_PROMPTS = """COPY annotation_prompt (id, dataset_id, content_hash, domain, messages, query, source, meta,
                                          created_at) FROM STDIN (FORMAT BINARY)"""
COPY_RESPONSES = """COPY annotation_response (id, prompt_id, dataset_id, model, text, content_hash, created_at)
                    FROM STDIN (FORMAT BINARY)"""
COPY_PAIRS = """COPY annotation_pair (prompt_id, chosen_id, rejected_id, dataset_id, domain, origin, status,
                                      status_reason, created_at) FROM STDIN (FORMAT BINARY)"""
PROMPT_ROW_START = struct.Struct(">hiqiq")  # 9 fields; id, dataset_id
RESPONSE_ROW_START = struct.Struct(">hiqiqiq")  # 7 fields; id, prompt_id, dataset_id
PAIR_ROW_START = struct.Struct(">hiqiqiqiq")  # 9 fields; prompt_id, chosen_id, rejected_id, dataset_id
COPY_SIGNATURE = b"PGCOPY\n\xff\r\n\0" + bytes(8)  # then flags and header extension, both 0
COPY_TRAILER = b"\xff\xff"
_LENGTH = struct.Struct(">i")
_HASH_LENGTH = _LENGTH.pack(16)
_INT8 = struct.Struct(">iq")
_PG_EPOCH = datetime(2000, 1, 1, tzinfo=UTC)

JUDGEMENT_STAGING_DDL = """
CREATE TEMP TABLE IF NOT EXISTS stage_judgement (
    response_id bigint, judge_id bigint, score double precision
) ON COMMIT DELETE ROWS;
-- Emptied here too: a caller's outer transaction may span several batches.
TRUNCATE stage_judgement;
"""


@dataclass
class BatchResult:
    prompts: int = 0
    responses: int = 0
    pairs: int = 0
    judgements: int = 0
    duplicates: int = 0
    by_domain: Counter = field(default_factory=Counter)
    prompts_by_domain: Counter = field(default_factory=Counter)
    unknown_domains: Counter = field(default_factory=Counter)


@dataclass
class BatchRows:
    """A batch's distinct rows, keyed by the hashes the tables' unique keys hold; built without the database
    (the import builds the next batch's in its reading thread while this one is written)."""
    prompts: dict = field(default_factory=dict)  # p_hash: (domain, its COPY fields content_hash … query)
    responses: dict = field(default_factory=dict)  # (p_hash, t_hash): its COPY fields model, text, content_hash
    pairs: dict = field(default_factory=dict)  # (p_hash, chosen t_hash, rejected t_hash): None
    judgements: dict = field(default_factory=dict)  # (p_hash, t_hash, judge name): score
    duplicates: int = 0
    unknown_domains: Counter = field(default_factory=Counter)


def batch_rows(records):
    """The rows `records` (PairRecord or ResponsesRecord) bring, repeats within the batch merged."""
    rows = BatchRows()
    prompts, responses, judgements = rows.prompts, rows.responses, rows.judgements
    for record in records:
        p_hash = messages_key(record.messages)
        if p_hash not in prompts:
            prompts[p_hash] = (record.domain, b"".join((
                _HASH_LENGTH, bytes.fromhex(p_hash), _field(record.domain.encode()),
                _field(b"\x01" + orjson.dumps(record.messages)), _field(record.messages[-1]["content"].encode()))))
        if record.domain_label and record.domain == "other":
            rows.unknown_domains[record.domain_label] += 1
        if isinstance(record, PairRecord):
            c_hash = _add_response(responses, p_hash, record.chosen_model, record.chosen)
            r_hash = _add_response(responses, p_hash, record.rejected_model, record.rejected)
            key = (p_hash, c_hash, r_hash)
            if key in rows.pairs:
                rows.duplicates += 1
            rows.pairs[key] = None
            for t_hash, scores in ((c_hash, record.chosen_scores), (r_hash, record.rejected_scores)):
                for judge, score in scores.items():
                    judgements.setdefault((p_hash, t_hash, judge), float(score))
        else:
            for model, text, scores in record.responses:
                t_hash = _add_response(responses, p_hash, model, text)
                for judge, score in scores.items():
                    judgements.setdefault((p_hash, t_hash, judge), float(score))
    return rows


def _add_response(responses, p_hash, model, text):
    """Add the response unless the batch has it; returns its hash."""
    data = text.encode()
    t_hash = utf8_key(data)
    if (p_hash, t_hash) not in responses:
        responses[(p_hash, t_hash)] = b"".join((_field(model.encode()), _LENGTH.pack(len(data)), data,
                                                _HASH_LENGTH, bytes.fromhex(t_hash)))
    return t_hash


def _field(data):
    return _LENGTH.pack(len(data)) + data


def write_batch(dataset, records, source=""):
    """Store `records` (a list of PairRecord / ResponsesRecord, or their BatchRows) in `dataset`; returns
    what was added."""
    rows = records if isinstance(records, BatchRows) else batch_rows(records)
    prompts, responses, pairs = rows.prompts, rows.responses, rows.pairs
    dataset_id = dataset.pk  # a property: read once, not once a row
    result = BatchResult(duplicates=rows.duplicates, unknown_domains=Counter(rows.unknown_domains))
    judge_ids = _judge_ids({judge for _p, _t, judge in rows.judgements})
    judgements = {(p, t, judge_ids[judge]): score for (p, t, judge), score in rows.judgements.items()}

    with connection.cursor() as cursor:
        # Local to the batch's transaction. The batch commits with the job's cursor, so a server crash that
        # loses the last commits (synchronous_commit off) loses the cursor with them and the import resumes
        # before them; a killed worker loses nothing. No JIT and no sequential scans: right after a large
        # import the statistics are stale, and the lookups below are index probes whatever they say.
        cursor.execute("SET LOCAL synchronous_commit = off; SET LOCAL jit = off; SET LOCAL enable_seqscan = off")
        lock_dataset_rows(cursor, dataset_id)
        raw = connection.connection
        now = timezone.now()
        created_at = _INT8.pack(8, (now - _PG_EPOCH) // timedelta(microseconds=1))

        # Which of the batch's rows the dataset has: prompts by hash; responses only of the prompts it had; pairs
        # only of two responses it had (so most batches probe little). The rows it has keep their ids (and a
        # prompt its domain); the others get ids from the sequences, all in one statement.
        hashes = list(prompts)
        known = _probe(raw, PROMPT_PROBE, [_array(hashes), dataset_id])
        prompt_rows = {hashes[i - 1]: (pk, domain) for i, pk, domain in known}
        new_prompts = [h for h in hashes if h not in prompt_rows] if prompt_rows else hashes
        asked = [(prompt_rows[p][0], t) for p, t in responses if p in prompt_rows]
        known = _probe(raw, RESPONSE_PROBE, [_array(str(p) for p, _t in asked),
                                             _array(t for _p, t in asked)]) if asked else []
        response_ids = {asked[i - 1]: pk for i, pk in known}
        old_responses = set(response_ids)
        existing = set()
        if old_responses:
            new_responses = [(p, t) for p, t in responses
                             if p not in prompt_rows or (prompt_rows[p][0], t) not in old_responses]
            asked = [(prompt_rows[p][0], response_ids[(prompt_rows[p][0], c)], response_ids[(prompt_rows[p][0], r)])
                     for p, c, r in pairs if p in prompt_rows and (prompt_rows[p][0], c) in old_responses
                     and (prompt_rows[p][0], r) in old_responses]
            existing = set(_probe(raw, PAIR_PROBE, [_array(str(row[0]) for row in asked),
                                                    _array(str(row[1]) for row in asked),
                                                    _array(str(row[2]) for row in asked)])) if asked else set()
        else:
            new_responses = list(responses)
        prompt_ids, new_response_ids = _next_ids(raw, len(new_prompts), len(new_responses))

        # Each table's rows are packed while PostgreSQL still inserts the previous table's: a COPY's data is
        # streamed, and its write returns once the data is in the socket's buffers.
        tail = _field(source.encode()) + _field(b"\x01{}") + created_at
        payload = [COPY_SIGNATURE]
        for p_hash, pk in zip(new_prompts, prompt_ids):
            domain, fields = prompts[p_hash]
            prompt_rows[p_hash] = (pk, domain)
            payload += (PROMPT_ROW_START.pack(9, 8, pk, 8, dataset_id), fields, tail)
        with _copy(raw, COPY_PROMPTS, payload):
            result.prompts = len(new_prompts)
            result.prompts_by_domain.update(prompts[h][0] for h in new_prompts)
            payload = [COPY_SIGNATURE]
            for (p_hash, t_hash), pk in zip(new_responses, new_response_ids):
                prompt_id = prompt_rows[p_hash][0]
                response_ids[(prompt_id, t_hash)] = pk
                payload += (RESPONSE_ROW_START.pack(7, 8, pk, 8, prompt_id, 8, dataset_id),
                            responses[(p_hash, t_hash)], created_at)
        with _copy(raw, COPY_RESPONSES, payload):
            result.responses = len(new_responses)
            tail = _field(b"imported") + _field(b"pending") + _field(b"") + created_at
            domain_fields = {}
            payload = [COPY_SIGNATURE]
            for p_hash, c_hash, r_hash in pairs:
                prompt_id, domain = prompt_rows[p_hash]
                chosen, rejected = response_ids[(prompt_id, c_hash)], response_ids[(prompt_id, r_hash)]
                if chosen != rejected and (prompt_id, chosen, rejected) not in existing:
                    if domain not in domain_fields:
                        domain_fields[domain] = _field(domain.encode())
                    payload += (PAIR_ROW_START.pack(9, 8, prompt_id, 8, chosen, 8, rejected, 8, dataset_id),
                                domain_fields[domain], tail)
                    result.pairs += 1
                    result.by_domain[domain] += 1
        with _copy(raw, COPY_PAIRS, payload):
            result.duplicates += len(pairs) - result.pairs

        def response_id(p_hash, t_hash):
            return response_ids[(prompt_rows[p_hash][0], t_hash)]

        if judgements:
            cursor.execute(JUDGEMENT_STAGING_DDL)
            with raw.cursor().copy("COPY stage_judgement (response_id, judge_id, score) FROM STDIN") as copy:
                for (p_hash, t_hash, judge_id), score in judgements.items():
                    copy.write_row((response_id(p_hash, t_hash), judge_id, score))
            cursor.execute(
                """INSERT INTO annotation_judgement (response_id, judge_id, rubric_id, score, analysis, raw_output,
                                                     status, input_tokens, output_tokens, cost, created_at)
                   SELECT response_id, judge_id, NULL, score, '', '', 'ok', 0, 0, 0, %(now)s FROM stage_judgement
                   ON CONFLICT ON CONSTRAINT judgement_unique DO NOTHING""",
                {"now": now},
            )
            result.judgements = cursor.rowcount
    return result


def lock_dataset_rows(cursor, dataset_id):
    """Serialise the transactions that add prompts, responses or pairs to one dataset (the import's batches
    and pair building's inserts), until the caller's transaction ends. The import looks up which of its rows
    the dataset has and COPYs the others in: nothing may add one of them in between."""
    cursor.execute("SELECT pg_advisory_xact_lock(%s, %s)", [DATASET_ROWS_LOCK, dataset_id])


def _array(keys):
    """A PostgreSQL array literal of hex hashes or numbers (a bound parameter that psycopg need not adapt
    element by element)."""
    return "{" + ",".join(keys) + "}"


@contextmanager
def _copy(raw, sql, payload):
    """COPY a binary payload (the signature, then whole rows) into a table; the block runs while PostgreSQL
    inserts the rows, and the COPY ends after it."""
    payload.append(COPY_TRAILER)
    with raw.cursor().copy(sql) as copy:
        copy.write(b"".join(payload))
        yield


def _probe(raw, sql, params):
    # A server-side bound cursor: the arrays travel as parameters, not quoted into the SQL in Python.
    with psycopg.Cursor(raw) as cursor:
        cursor.execute(sql, params)
        return cursor.fetchall()


def _next_ids(raw, prompts, responses):
    """Ids for that many new prompts and responses from the tables' sequences, in one round trip."""
    if not prompts and not responses:
        return [], []
    # Each sequence is looked up once (OFFSET 0 keeps the subquery from being pulled up): inside nextval's
    # argument, pg_get_serial_sequence ran for every id and cost 8 times the nextval (16 against 2 ms for 4,000).
    rows = _probe(raw, """SELECT 0, nextval(s.seq) FROM generate_series(1, %s), (SELECT
                              pg_get_serial_sequence('annotation_prompt', 'id')::regclass AS seq OFFSET 0) s
                          UNION ALL
                          SELECT 1, nextval(s.seq) FROM generate_series(1, %s), (SELECT
                              pg_get_serial_sequence('annotation_response', 'id')::regclass AS seq OFFSET 0) s""",
                  [prompts, responses])
    return [pk for kind, pk in rows if kind == 0], [pk for kind, pk in rows if kind == 1]


def _judge_ids(names):
    """Judges named in imported scores; created as score-only judges (no API) when new."""
    if not names:
        return {}
    existing = dict(Judge.objects.filter(name__in=names).values_list("name", "pk"))
    for name in names - existing.keys():
        existing[name] = Judge.objects.get_or_create(name=name)[0].pk
    return existing
