"""Write a batch of parsed records into PostgreSQL.

Rows are COPYed into temporary staging tables and moved into the real tables with
INSERT … SELECT … ON CONFLICT DO NOTHING, so a batch is a handful of statements whatever its
size, and writing the same batch twice adds nothing. Call inside a transaction.

The ids the rows get come back to Python by one lookup per table, a probe of the unique index
(prompt_unique_hash, response_unique_hash) for each staged row (a LATERAL subquery with LIMIT 1, which
the planner can neither flatten nor turn inside out), and travel on in the next table's COPY; no
other statement joins anything.
So a batch reads only its own rows and costs the same in an empty dataset and in one of a million
pairs. Left to itself the planner hashed every prompt of the dataset for each batch (right after an
import its statistics predate the rows: it expected a few hundred), and matched a pair's responses
through every response of its prompt: the 1M-pair import of issue 17 slowed down as it went, 707 s.
"""

from collections import Counter
from dataclasses import dataclass, field

import orjson
from django.db import connection
from django.utils import timezone

from ..models import Judge
from .formats import PairRecord, messages_key, text_key

STAGING_DDL = """
CREATE TEMP TABLE IF NOT EXISTS stage_prompt (
    content_hash uuid, domain text, messages jsonb, query text, source text
) ON COMMIT DELETE ROWS;
CREATE TEMP TABLE IF NOT EXISTS stage_response (
    prompt_id bigint, content_hash uuid, model text, text text
) ON COMMIT DELETE ROWS;
CREATE TEMP TABLE IF NOT EXISTS stage_pair (
    prompt_id bigint, domain text, chosen_id bigint, rejected_id bigint
) ON COMMIT DELETE ROWS;
CREATE TEMP TABLE IF NOT EXISTS stage_judgement (
    response_id bigint, judge_id bigint, score double precision
) ON COMMIT DELETE ROWS;
-- Emptied here too: a caller's outer transaction may span several batches.
TRUNCATE stage_prompt, stage_response, stage_pair, stage_judgement;
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


def write_batch(dataset, records, source=""):
    """Store `records` (PairRecord or ResponsesRecord) in `dataset`; returns what was added."""
    prompts, responses, pairs, judgements = {}, {}, {}, {}
    result = BatchResult()
    judge_ids = _judge_ids({j for r in records for s in _scores(r) for j in s})
    for record in records:
        p_hash = messages_key(record.messages)
        prompts.setdefault(p_hash, (record.domain, record.messages))
        if record.domain_label and record.domain == "other":
            result.unknown_domains[record.domain_label] += 1
        if isinstance(record, PairRecord):
            c_hash, r_hash = text_key(record.chosen), text_key(record.rejected)
            responses.setdefault((p_hash, c_hash), (record.chosen_model, record.chosen))
            responses.setdefault((p_hash, r_hash), (record.rejected_model, record.rejected))
            key = (p_hash, c_hash, r_hash)
            if key in pairs:
                result.duplicates += 1
            pairs[key] = None
            for t_hash, scores in ((c_hash, record.chosen_scores), (r_hash, record.rejected_scores)):
                for judge, score in scores.items():
                    judgements.setdefault((p_hash, t_hash, judge_ids[judge]), float(score))
        else:
            for model, text, scores in record.responses:
                t_hash = text_key(text)
                responses.setdefault((p_hash, t_hash), (model, text))
                for judge, score in scores.items():
                    judgements.setdefault((p_hash, t_hash, judge_ids[judge]), float(score))

    with connection.cursor() as cursor:
        cursor.execute(STAGING_DDL)
        # Local to the batch's transaction. The batch commits with the job's cursor, so a server crash that
        # loses the last commits (synchronous_commit off) loses the cursor with them and the import resumes
        # before them; a killed worker loses nothing. No JIT: the lookups' cost estimates pass its
        # threshold when the statistics are stale, and compiling costs more than the statement.
        cursor.execute("SET LOCAL synchronous_commit = off; SET LOCAL jit = off")
        raw = cursor.cursor
        now = timezone.now()
        params = {"dataset": dataset.pk, "now": now}
        with raw.copy("COPY stage_prompt (content_hash, domain, messages, query, source) FROM STDIN") as copy:
            for p_hash, (domain, messages) in prompts.items():
                copy.write_row((p_hash, domain, orjson.dumps(messages).decode(), messages[-1]["content"], source))
        cursor.execute(
            """INSERT INTO annotation_prompt (dataset_id, content_hash, domain, messages, query, source, meta, created_at)
               SELECT %(dataset)s, content_hash, domain, messages, query, source, '{}'::jsonb, %(now)s FROM stage_prompt
               ON CONFLICT (dataset_id, content_hash) DO NOTHING
               RETURNING domain""",
            params,
        )
        inserted_prompts = [row[0] for row in cursor.fetchall()]
        result.prompts = len(inserted_prompts)
        result.prompts_by_domain.update(inserted_prompts)
        cursor.execute(
            """SELECT s.content_hash, p.id, p.domain FROM stage_prompt s CROSS JOIN LATERAL (
                   SELECT id, domain FROM annotation_prompt
                   WHERE dataset_id = %(dataset)s AND content_hash = s.content_hash LIMIT 1) p""",
            params,
        )
        prompt_rows = {h.hex: (pk, domain) for h, pk, domain in cursor.fetchall()}

        with raw.copy("COPY stage_response (prompt_id, content_hash, model, text) FROM STDIN") as copy:
            for (p_hash, t_hash), (model, text) in responses.items():
                copy.write_row((prompt_rows[p_hash][0], t_hash, model, text))
        cursor.execute(
            """INSERT INTO annotation_response (dataset_id, prompt_id, model, text, content_hash, created_at)
               SELECT %(dataset)s, prompt_id, model, text, content_hash, %(now)s FROM stage_response
               ON CONFLICT (prompt_id, content_hash) DO NOTHING""",
            params,
        )
        result.responses = cursor.rowcount
        cursor.execute(
            """SELECT s.prompt_id, s.content_hash, r.id FROM stage_response s CROSS JOIN LATERAL (
                   SELECT id FROM annotation_response
                   WHERE prompt_id = s.prompt_id AND content_hash = s.content_hash LIMIT 1) r"""
        )
        response_ids = {(pid, h.hex): pk for pid, h, pk in cursor.fetchall()}

        def response_id(p_hash, t_hash):
            return response_ids[(prompt_rows[p_hash][0], t_hash)]

        with raw.copy("COPY stage_pair (prompt_id, domain, chosen_id, rejected_id) FROM STDIN") as copy:
            for p_hash, c_hash, r_hash in pairs:
                prompt_id, domain = prompt_rows[p_hash]
                copy.write_row((prompt_id, domain, response_id(p_hash, c_hash), response_id(p_hash, r_hash)))
        cursor.execute(
            """INSERT INTO annotation_pair (dataset_id, prompt_id, domain, chosen_id, rejected_id, origin,
                                            status, status_reason, created_at)
               SELECT %(dataset)s, prompt_id, domain, chosen_id, rejected_id, 'imported', 'pending', '', %(now)s
               FROM stage_pair WHERE chosen_id <> rejected_id
               ON CONFLICT (prompt_id, chosen_id, rejected_id) DO NOTHING
               RETURNING domain""",
            params,
        )
        inserted_domains = [row[0] for row in cursor.fetchall()]
        result.pairs = len(inserted_domains)
        result.by_domain.update(inserted_domains)
        result.duplicates += len(pairs) - result.pairs
        if judgements:
            with raw.copy("COPY stage_judgement (response_id, judge_id, score) FROM STDIN") as copy:
                for (p_hash, t_hash, judge_id), score in judgements.items():
                    copy.write_row((response_id(p_hash, t_hash), judge_id, score))
            cursor.execute(
                """INSERT INTO annotation_judgement (response_id, judge_id, rubric_id, score, analysis, raw_output,
                                                     status, input_tokens, output_tokens, cost, created_at)
                   SELECT response_id, judge_id, NULL, score, '', '', 'ok', 0, 0, 0, %(now)s FROM stage_judgement
                   ON CONFLICT ON CONSTRAINT judgement_unique DO NOTHING""",
                params,
            )
            result.judgements = cursor.rowcount
    return result


def _scores(record):
    """The {judge: score} dicts a record brings: one per response, or the pair's two."""
    if isinstance(record, PairRecord):
        return (record.chosen_scores, record.rejected_scores)
    return (s for _m, _t, s in record.responses)


def _judge_ids(names):
    """Judges named in imported scores; created as score-only judges (no API) when new."""
    if not names:
        return {}
    existing = dict(Judge.objects.filter(name__in=names).values_list("name", "pk"))
    for name in names - existing.keys():
        existing[name] = Judge.objects.get_or_create(name=name)[0].pk
    return existing
