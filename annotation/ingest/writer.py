"""Write a batch of parsed records into PostgreSQL.

Rows are COPYed into temporary staging tables and moved into the real tables with
INSERT … SELECT … ON CONFLICT DO NOTHING, so a batch is a handful of statements whatever its
size, and writing the same batch twice adds nothing. Call inside a transaction.
"""

from collections import Counter
from dataclasses import dataclass, field

import orjson
from django.db import connection
from django.utils import timezone

from ..models import Judge
from .formats import PairRecord, messages_hash, text_hash

STAGING_DDL = """
CREATE TEMP TABLE IF NOT EXISTS stage_prompt (
    content_hash uuid, domain text, messages jsonb, query text, source text
) ON COMMIT DELETE ROWS;
CREATE TEMP TABLE IF NOT EXISTS stage_response (
    prompt_hash uuid, content_hash uuid, model text, text text
) ON COMMIT DELETE ROWS;
CREATE TEMP TABLE IF NOT EXISTS stage_pair (
    prompt_hash uuid, chosen_hash uuid, rejected_hash uuid
) ON COMMIT DELETE ROWS;
CREATE TEMP TABLE IF NOT EXISTS stage_judgement (
    prompt_hash uuid, response_hash uuid, judge_id bigint, score double precision
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
        p_hash = messages_hash(record.messages)
        prompts.setdefault(p_hash, (record.domain, record.messages))
        if record.domain_label and record.domain == "other":
            result.unknown_domains[record.domain_label] += 1
        if isinstance(record, PairRecord):
            c_hash, r_hash = text_hash(record.chosen), text_hash(record.rejected)
            responses.setdefault((p_hash, c_hash), (record.chosen_model, record.chosen))
            responses.setdefault((p_hash, r_hash), (record.rejected_model, record.rejected))
            key = (p_hash, c_hash, r_hash)
            if key in pairs:
                result.duplicates += 1
            pairs[key] = prompts[p_hash][0]
            for t_hash, scores in ((c_hash, record.chosen_scores), (r_hash, record.rejected_scores)):
                for judge, score in scores.items():
                    judgements.setdefault((p_hash, t_hash, judge_ids[judge]), float(score))
        else:
            for model, text, scores in record.responses:
                t_hash = text_hash(text)
                responses.setdefault((p_hash, t_hash), (model, text))
                for judge, score in scores.items():
                    judgements.setdefault((p_hash, t_hash, judge_ids[judge]), float(score))

    with connection.cursor() as cursor:
        cursor.execute(STAGING_DDL)
        raw = cursor.cursor
        with raw.copy("COPY stage_prompt (content_hash, domain, messages, query, source) FROM STDIN") as copy:
            for p_hash, (domain, messages) in prompts.items():
                copy.write_row((p_hash, domain, orjson.dumps(messages).decode(), messages[-1]["content"], source))
        with raw.copy("COPY stage_response (prompt_hash, content_hash, model, text) FROM STDIN") as copy:
            for (p_hash, t_hash), (model, text) in responses.items():
                copy.write_row((p_hash, t_hash, model, text))
        with raw.copy("COPY stage_pair (prompt_hash, chosen_hash, rejected_hash) FROM STDIN") as copy:
            for key in pairs:
                copy.write_row(key)
        with raw.copy("COPY stage_judgement (prompt_hash, response_hash, judge_id, score) FROM STDIN") as copy:
            for (p_hash, t_hash, judge_id), score in judgements.items():
                copy.write_row((p_hash, t_hash, judge_id, score))
        now = timezone.now()
        params = {"dataset": dataset.pk, "now": now}
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
            """INSERT INTO annotation_response (dataset_id, prompt_id, model, text, content_hash, created_at)
               SELECT %(dataset)s, p.id, s.model, s.text, s.content_hash, %(now)s
               FROM stage_response s JOIN annotation_prompt p
                 ON p.dataset_id = %(dataset)s AND p.content_hash = s.prompt_hash
               ON CONFLICT (prompt_id, content_hash) DO NOTHING""",
            params,
        )
        result.responses = cursor.rowcount
        cursor.execute(
            """INSERT INTO annotation_pair (dataset_id, prompt_id, domain, chosen_id, rejected_id, origin,
                                            status, status_reason, created_at)
               SELECT %(dataset)s, p.id, p.domain, c.id, r.id, 'imported', 'pending', '', %(now)s
               FROM stage_pair s
               JOIN annotation_prompt p ON p.dataset_id = %(dataset)s AND p.content_hash = s.prompt_hash
               JOIN annotation_response c ON c.prompt_id = p.id AND c.content_hash = s.chosen_hash
               JOIN annotation_response r ON r.prompt_id = p.id AND r.content_hash = s.rejected_hash
               WHERE c.id <> r.id
               ON CONFLICT (prompt_id, chosen_id, rejected_id) DO NOTHING
               RETURNING domain""",
            params,
        )
        inserted_domains = [row[0] for row in cursor.fetchall()]
        result.pairs = len(inserted_domains)
        result.by_domain.update(inserted_domains)
        result.duplicates += len(pairs) - result.pairs
        cursor.execute(
            """INSERT INTO annotation_judgement (response_id, judge_id, rubric_id, score, analysis, raw_output, status,
                                                 input_tokens, output_tokens, cost, created_at)
               SELECT r.id, s.judge_id, NULL, s.score, '', '', 'ok', 0, 0, 0, %(now)s
               FROM stage_judgement s
               JOIN annotation_prompt p ON p.dataset_id = %(dataset)s AND p.content_hash = s.prompt_hash
               JOIN annotation_response r ON r.prompt_id = p.id AND r.content_hash = s.response_hash
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
