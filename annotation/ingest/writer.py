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

from collections import Counter
from dataclasses import dataclass, field
from uuid import UUID

import orjson
import psycopg
from django.db import connection
from django.utils import timezone

from ..models import Judge
from .formats import PairRecord, messages_key, text_key

# pg_advisory_xact_lock's first key for "rows are being added to dataset N" (the second key is N).
DATASET_ROWS_LOCK = 1_700_001

# Which of a batch's prompt hashes the dataset has. The subquery names only the hash (OFFSET 0 keeps the
# dataset's condition out of it), so only prompt_unique_hash (content_hash, dataset_id) can serve it: an
# index that leads with the dataset, read for a new dataset the statistics call empty, would be walked
# whole for every probe.
PROMPT_PROBE = """SELECT k.h, p.id, p.domain FROM unnest(%s::uuid[]) AS k(h) CROSS JOIN LATERAL (
                      SELECT id, domain, dataset_id FROM annotation_prompt WHERE content_hash = k.h OFFSET 0) p
                  WHERE p.dataset_id = %s"""

# The bulk of a batch (responses, pairs) goes in COPY's binary format: no escaping of the texts in Python
# and no parsing of numbers, hashes and times in the server (40,000 real responses: 0.13 against 0.47 s of
# importer CPU, 0.63 against 0.92 s of backend CPU; BENCHMARKS.md, issue 17). varchar columns take text's
# binary form. Prompts stay in text format: their messages are JSON text already.
RESPONSE_COPY_TYPES = ["int8", "int8", "int8", "text", "text", "uuid", "timestamptz"]
PAIR_COPY_TYPES = ["int8", "int8", "text", "int8", "int8", "text", "text", "text", "timestamptz"]

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
    prompts: dict = field(default_factory=dict)  # p_hash: (domain, messages as JSON, query)
    responses: dict = field(default_factory=dict)  # (p_hash, t_hash): (model, text)
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
            prompts[p_hash] = (record.domain, orjson.dumps(record.messages).decode(), record.messages[-1]["content"])
        if record.domain_label and record.domain == "other":
            rows.unknown_domains[record.domain_label] += 1
        if isinstance(record, PairRecord):
            c_hash, r_hash = text_key(record.chosen), text_key(record.rejected)
            responses.setdefault((p_hash, c_hash), (record.chosen_model, record.chosen))
            responses.setdefault((p_hash, r_hash), (record.rejected_model, record.rejected))
            key = (p_hash, c_hash, r_hash)
            if key in rows.pairs:
                rows.duplicates += 1
            rows.pairs[key] = None
            for t_hash, scores in ((c_hash, record.chosen_scores), (r_hash, record.rejected_scores)):
                for judge, score in scores.items():
                    judgements.setdefault((p_hash, t_hash, judge), float(score))
        else:
            for model, text, scores in record.responses:
                t_hash = text_key(text)
                responses.setdefault((p_hash, t_hash), (model, text))
                for judge, score in scores.items():
                    judgements.setdefault((p_hash, t_hash, judge), float(score))
    return rows


def write_batch(dataset, records, source=""):
    """Store `records` (a list of PairRecord / ResponsesRecord, or their BatchRows) in `dataset`; returns
    what was added."""
    rows = records if isinstance(records, BatchRows) else batch_rows(records)
    prompts, responses, pairs = rows.prompts, rows.responses, rows.pairs
    result = BatchResult(duplicates=rows.duplicates, unknown_domains=Counter(rows.unknown_domains))
    judge_ids = _judge_ids({judge for _p, _t, judge in rows.judgements})
    judgements = {(p, t, judge_ids[judge]): score for (p, t, judge), score in rows.judgements.items()}

    with connection.cursor() as cursor:
        # Local to the batch's transaction. The batch commits with the job's cursor, so a server crash that
        # loses the last commits (synchronous_commit off) loses the cursor with them and the import resumes
        # before them; a killed worker loses nothing. No JIT and no sequential scans: right after a large
        # import the statistics are stale, and the lookups below are index probes whatever they say.
        cursor.execute("SET LOCAL synchronous_commit = off; SET LOCAL jit = off; SET LOCAL enable_seqscan = off")
        lock_dataset_rows(cursor, dataset.pk)
        raw = connection.connection
        now = timezone.now()

        # Prompts: the ones the dataset has already keep their id and domain; the others get ids from the
        # sequence here and are COPYed straight into the table.
        known = _probe(raw, PROMPT_PROBE, [list(prompts), dataset.pk])
        prompt_rows = {h.hex: (pk, domain) for h, pk, domain in known}
        new_prompts = [h for h in prompts if h not in prompt_rows]
        for p_hash, pk in zip(new_prompts, _next_ids(raw, "annotation_prompt", len(new_prompts))):
            prompt_rows[p_hash] = (pk, prompts[p_hash][0])
        with raw.cursor().copy("COPY annotation_prompt (id, dataset_id, content_hash, domain, messages, query, "
                               "source, meta, created_at) FROM STDIN") as copy:
            for p_hash in new_prompts:
                domain, messages, query = prompts[p_hash]
                copy.write_row((prompt_rows[p_hash][0], dataset.pk, p_hash, domain, messages, query, source, "{}", now))
        result.prompts = len(new_prompts)
        result.prompts_by_domain.update(prompts[h][0] for h in new_prompts)

        # Responses: only a prompt the dataset had before can have them already.
        new_prompt_set = set(new_prompts)
        asked = [(prompt_rows[p][0], t) for p, t in responses if p not in new_prompt_set]
        known = _probe(raw, """SELECT r.prompt_id, k.h, r.id FROM unnest(%s::bigint[], %s::uuid[]) AS k(p, h)
                               CROSS JOIN LATERAL (SELECT id, prompt_id FROM annotation_response
                                                   WHERE prompt_id = k.p AND content_hash = k.h LIMIT 1) r""",
                       [[p for p, _t in asked], [t for _p, t in asked]]) if asked else []
        response_ids = {(pid, h.hex): pk for pid, h, pk in known}
        new_responses = [(p, t) for p, t in responses if (prompt_rows[p][0], t) not in response_ids]
        ids = _next_ids(raw, "annotation_response", len(new_responses))
        with raw.cursor().copy("COPY annotation_response (id, dataset_id, prompt_id, model, text, content_hash, "
                               "created_at) FROM STDIN (FORMAT BINARY)") as copy:
            copy.set_types(RESPONSE_COPY_TYPES)
            for (p_hash, t_hash), pk in zip(new_responses, ids):
                prompt_id = prompt_rows[p_hash][0]
                response_ids[(prompt_id, t_hash)] = pk
                model, text = responses[(p_hash, t_hash)]
                copy.write_row((pk, dataset.pk, prompt_id, model, text, UUID(hex=t_hash), now))
        result.responses = len(new_responses)

        def response_id(p_hash, t_hash):
            return response_ids[(prompt_rows[p_hash][0], t_hash)]

        # Pairs: only two responses the dataset had before can already make one.
        rows = []
        old_responses = set(response_ids) - {(prompt_rows[p][0], t) for p, t in new_responses}
        for p_hash, c_hash, r_hash in pairs:
            prompt_id, domain = prompt_rows[p_hash]
            chosen, rejected = response_id(p_hash, c_hash), response_id(p_hash, r_hash)
            if chosen != rejected:
                old = (prompt_id, c_hash) in old_responses and (prompt_id, r_hash) in old_responses
                rows.append((prompt_id, domain, chosen, rejected, old))
        asked = [row for row in rows if row[4]]
        existing = set(_probe(raw, """SELECT k.p, k.c, k.r FROM unnest(%s::bigint[], %s::bigint[], %s::bigint[]) AS k(p, c, r)
                                      CROSS JOIN LATERAL (SELECT FROM annotation_pair WHERE prompt_id = k.p
                                                          AND chosen_id = k.c AND rejected_id = k.r LIMIT 1) x""",
                              [[r[0] for r in asked], [r[2] for r in asked], [r[3] for r in asked]])) if asked else set()
        with raw.cursor().copy("COPY annotation_pair (dataset_id, prompt_id, domain, chosen_id, rejected_id, origin, "
                               "status, status_reason, created_at) FROM STDIN (FORMAT BINARY)") as copy:
            copy.set_types(PAIR_COPY_TYPES)
            for prompt_id, domain, chosen, rejected, _old in rows:
                if (prompt_id, chosen, rejected) not in existing:
                    copy.write_row((dataset.pk, prompt_id, domain, chosen, rejected, "imported", "pending", "", now))
                    result.pairs += 1
                    result.by_domain[domain] += 1
        result.duplicates += len(pairs) - result.pairs
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


def _probe(raw, sql, params):
    # A server-side bound cursor: the arrays travel as parameters, not quoted into the SQL in Python.
    with psycopg.Cursor(raw) as cursor:
        cursor.execute(sql, params)
        return cursor.fetchall()


def _next_ids(raw, table, n):
    if not n:
        return []
    return [pk for (pk,) in _probe(raw, "SELECT nextval(pg_get_serial_sequence(%s, 'id')) FROM generate_series(1, %s)",
                                   [table, n])]


def _judge_ids(names):
    """Judges named in imported scores; created as score-only judges (no API) when new."""
    if not names:
        return {}
    existing = dict(Judge.objects.filter(name__in=names).values_list("name", "pk"))
    for name in names - existing.keys():
        existing[name] = Judge.objects.get_or_create(name=name)[0].pk
    return existing
