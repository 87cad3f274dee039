"""Builders for prompts with judged responses, made with plain constructors (no import)."""

import uuid

from annotation.models import Judge, Judgement, Pair, Prompt, Response, Rubric


def judge(name):
    return Judge.objects.get_or_create(name=name)[0]


def scored_prompt(dataset, query, responses, domain="chat"):
    """A prompt with responses {label: {judge name: score}}; returns {label: Response}."""
    prompt = Prompt.objects.create(
        dataset=dataset, domain=domain, messages=[{"role": "user", "content": query}], query=query,
        content_hash=uuid.uuid4(),
    )
    made = {}
    for label, scores in responses.items():
        made[label] = Response.objects.create(
            dataset=dataset, prompt=prompt, model=f"model-{label}", text=f"{query} → {label}", content_hash=uuid.uuid4()
        )
        for name, score in scores.items():
            Judgement.objects.create(response=made[label], judge=judge(name), score=score, status="ok")
    return made


def rescore(response, name, score, rubric=None):
    Judgement.objects.filter(response=response, judge__name=name, rubric=rubric).update(score=score)


def rubric(domain="chat", version=1):
    return Rubric.objects.get_or_create(domain=domain, version=version, defaults={"text": "请先分析，再打分 [x]"})[0]


def constructed(dataset):
    """{(chosen label text, rejected label text): pair} of the dataset's constructed pairs."""
    return {
        (p.chosen.text, p.rejected.text): p
        for p in Pair.objects.filter(dataset=dataset, origin=Pair.Origin.CONSTRUCTED).select_related(
            "chosen", "rejected", "prompt")
    }


def imported_pair(dataset, chosen, rejected, status="pending"):
    return Pair.objects.create(dataset=dataset, prompt=chosen.prompt, domain=chosen.prompt.domain, chosen=chosen,
                               rejected=rejected, origin=Pair.Origin.IMPORTED, status=status)


def generate_scored(dataset, prompts, responses, judges):
    """Many scored prompts fast, inside PostgreSQL; scores are a deterministic function of the ids."""
    from django.db import connection

    judge_ids = [judge(f"gen-judge-{i}").pk for i in range(judges)]
    with connection.cursor() as c:
        c.execute(
            """INSERT INTO annotation_prompt (dataset_id, domain, messages, query, content_hash, source, meta,
                                              created_at)
               SELECT %s, (ARRAY['chat','code','math','logic','novel','role'])[1 + g %% 6],
                      jsonb_build_array(jsonb_build_object('role', 'user', 'content', '问题 ' || g)), '问题 ' || g,
                      md5(%s || ':' || g)::uuid, 'generated', '{}', now()
               FROM generate_series(1, %s) g""",
            [dataset.pk, dataset.name, prompts],
        )
        c.execute(
            """INSERT INTO annotation_response (dataset_id, prompt_id, model, text, content_hash, created_at)
               SELECT %s, p.id, 'model-' || g, '回答 ' || p.id || '-' || g, md5(p.id || ':' || g)::uuid, now()
               FROM annotation_prompt p CROSS JOIN generate_series(1, %s) g WHERE p.dataset_id = %s""",
            [dataset.pk, responses, dataset.pk],
        )
        c.execute(
            """INSERT INTO annotation_judgement (response_id, judge_id, rubric_id, score, analysis, raw_output, status,
                                                 input_tokens, output_tokens, cost, created_at)
               SELECT r.id, j, NULL, 1 + abs(hashtext(r.id || ':' || j)) %% 10, '', '', 'ok', 0, 0, 0, now()
               FROM annotation_response r CROSS JOIN unnest(%s::bigint[]) j WHERE r.dataset_id = %s""",
            [judge_ids, dataset.pk],
        )
