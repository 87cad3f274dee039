"""Generative judges in pairwise mode (CRBench's "which response is better, A or B?").

Each gold pair is asked in both orders (chosen as A, then chosen as B). The judge is right on a pair
only when both answers pick the chosen response; a verdict that flips with the order is a miss and
counts toward the judge's position-inconsistency rate; an answer without exactly one verdict
([[A]] or [[B]]) is never guessed: the pair is a miss counted as unparseable. A request that still
fails after the client's retries is a miss counted as an error; a permanent error (bad key, no
such model) fails the job with the provider's message.

A `pairwise_judge` job per (dataset, judge): pairs by keyset in chunks, each chunk's counts per
domain committed with its cursor, answers cached in JudgeCacheEntry (a re-run pays nothing). The
leaderboard reads the counts of the latest finished job.
"""

import asyncio
import re
from dataclasses import dataclass
from types import SimpleNamespace

import orjson

from django.db import connection, transaction
from django.utils.translation import ngettext_lazy, pgettext_lazy

from ..jobs import JobContext, JobFailed, Tally, job_kind
from ..judge_client import Failure, JudgeError, JudgeSettings, judge_clients, retry_policy
from ..judging import _cache_row, _store_cache, request_key
from ..models import Job, Judge
from ..rubrics import conversation_parts

# Pairs a chunk, per request the judge may have in flight: 2 requests a pair, so a chunk is about four
# rounds of answers, committed (and the job's lease renewed) well within JOB_LEASE_SECONDS.
PAIRS_PER_SLOT = 2

PAIRWISE_SYSTEM = """你是一名严格、公正的中文大模型回答评审员。你将看到用户的问题（可能带有系统提示和对话历史）以及两个助手给出的回答：回答A 和 回答B。
请比较两个回答，判断哪一个更好。评判标准：无害性、有用性、正确性与完整性；数学题先独立验算最终答案，答案错误的回答不能更好。
不要因为回答的先后顺序、长短或语气而偏袒任何一方。
输出要求：先写出简短的比较分析，然后在最后一行只写结论：回答A更好写 [[A]]，回答B更好写 [[B]]。必须二选一，不要写平局。"""

_VERDICT = re.compile(r"\[\[\s*([AaBb])\s*\]\]")


def parse_verdict(text):
    """'A' or 'B' when the answer holds verdicts of exactly one letter; None otherwise (never guessed)."""
    found = {m.upper() for m in _VERDICT.findall(text or "")}
    return found.pop() if len(found) == 1 else None


def pairwise_messages(prompt_messages, first, second):
    parts = conversation_parts(prompt_messages) + [f"【回答A】\n{first}", f"【回答B】\n{second}"]
    return [{"role": "system", "content": PAIRWISE_SYSTEM}, {"role": "user", "content": "\n\n".join(parts)}]


def outcome(verdict_chosen_first, verdict_chosen_second):
    """The pair's outcome from the verdicts with the chosen response as A, then as B."""
    if verdict_chosen_first is None or verdict_chosen_second is None:
        return "unparseable"
    picks_chosen = (verdict_chosen_first == "A", verdict_chosen_second == "B")
    if picks_chosen[0] != picks_chosen[1]:
        return "inconsistent"
    return "correct" if picks_chosen[0] else "wrong"


def pairwise_params(judge):
    if not judge.base_url or not judge.model:
        raise ValueError(f"judge {judge.name} has no base URL or model id (its scores were imported)")
    return {"judge": judge.pk, "judge_name": judge.name}


def _pairs(dataset_id, after, limit):
    with connection.cursor() as cursor:
        cursor.execute(
            """SELECT q.id, q.domain, p.messages, c.text, r.text FROM annotation_pair q
               JOIN annotation_prompt p ON p.id = q.prompt_id
               JOIN annotation_response c ON c.id = q.chosen_id JOIN annotation_response r ON r.id = q.rejected_id
               WHERE q.dataset_id = %s AND q.status <> 'withdrawn' AND q.id > %s ORDER BY q.id LIMIT %s""",
            [dataset_id, after, limit],
        )
        return cursor.fetchall()


def _ask_all(settings_, requests):
    """Answers (text or Failure) for each messages list, in order; JudgeError when permanent."""

    async def run():
        async with judge_clients([settings_], retry_policy()) as clients:
            tasks = [asyncio.ensure_future(clients[settings_.pk].complete(m)) for m in requests]
            try:
                return await asyncio.gather(*tasks)
            finally:
                for task in tasks:
                    task.cancel()

    return asyncio.run(run())


def _pairs_counted(field):
    return lambda counts: sum(row.get(field, 0) for row in counts.get("pairwise_by_domain", {}).values())


# Every pair is an item; one whose requests failed after the retries is a failure. An unparseable answer
# is the judge's own answer (a miss the leaderboard counts), not a failure of the job.
PAIRWISE_TALLY = Tally(
    items=_pairs_counted("n"), failures=_pairs_counted("error"),
    summary=ngettext_lazy("%(failed)s of %(items)s pair not judged (requests failed)",
                          "%(failed)s of %(items)s pairs not judged (requests failed)", "n"),
)


# Its counts are per domain (pairwise_by_domain), shown on the leaderboard.
@job_kind("pairwise_judge", label=pgettext_lazy("job kind", "pairwise judging"), unit="pairs", tally=PAIRWISE_TALLY)
def run_pairwise(ctx: JobContext):
    judge = Judge.objects.filter(pk=ctx.params["judge"]).first()
    if judge is None:
        raise JobFailed("the judge was deleted")
    settings_ = JudgeSettings.of(judge)
    dataset_id = ctx.job.dataset_id
    if not ctx.job.total:
        with connection.cursor() as cursor:
            cursor.execute("SELECT count(*) FROM annotation_pair WHERE dataset_id = %s AND status <> 'withdrawn'",
                           [dataset_id])
            ctx.set_total(cursor.fetchone()[0])
    after = ctx.cursor.get("after", 0)
    chunk = max(4, PAIRS_PER_SLOT * settings_.max_concurrency)
    while rows := _pairs(dataset_id, after, chunk):
        asked = ask_both_orders(judge, settings_, [(messages, chosen, rejected)
                                                    for _pk, _domain, messages, chosen, rejected in rows])
        by_domain = {}
        for (_pk, domain, *_rest), answer in zip(rows, asked.answers):
            result = "error" if answer is None else outcome(*answer.verdicts)
            counts = by_domain.setdefault(domain, {"n": 0, "correct": 0, "wrong": 0, "inconsistent": 0,
                                                   "unparseable": 0, "error": 0})
            counts["n"] += 1
            counts[result] += 1
        with transaction.atomic():
            asked.store_cache()
            ctx.commit(done=len(rows), counts={"pairwise_by_domain": by_domain}, cursor={"after": rows[-1][0]})
        after = rows[-1][0]


@dataclass
class BothOrders:
    """A pair's two answers: the verdicts with the chosen response as A, then as B, and their cache keys."""

    verdicts: tuple
    keys: tuple


@dataclass
class Asked:
    """What `ask_both_orders` got: per pair a BothOrders, or None when a request failed after the retries;
    `store_cache()` keeps the new answers (call it in the chunk's transaction)."""

    answers: list
    cache_rows: list

    def store_cache(self):
        _store_cache(self.cache_rows, replace=False)


def ask_both_orders(judge, settings_, pairs):
    """Ask `judge` about each (prompt messages, chosen text, rejected text) in both orders, answers cached in
    JudgeCacheEntry (a re-run pays nothing); JobFailed on a permanent error (bad key, no such model)."""
    requests = []
    for messages, chosen, rejected in pairs:
        messages = messages if isinstance(messages, list) else orjson.loads(messages)
        requests += [pairwise_messages(messages, chosen, rejected), pairwise_messages(messages, rejected, chosen)]
    keys = [request_key(judge, None, m) for m in requests]
    with connection.cursor() as cursor:
        cursor.execute("SELECT key, raw_output FROM annotation_judgecacheentry WHERE key = ANY(%s::uuid[])", [keys])
        cached = dict(cursor.fetchall())
    todo = [i for i, k in enumerate(keys) if k not in cached]
    try:
        answers = _ask_all(settings_, [requests[i] for i in todo]) if todo else []
    except JudgeError as exc:
        raise JobFailed(str(exc)) from None
    texts = {i: cached[k] for i, k in enumerate(keys) if k in cached}
    cache_rows = []
    for i, answer in zip(todo, answers):
        if isinstance(answer, Failure):
            continue
        texts[i] = answer.text
        cache_rows.append(_cache_row(SimpleNamespace(key=keys[i], judge_id=judge.pk), answer, judge))
    both = []
    for first, second in zip(range(0, len(keys), 2), range(1, len(keys), 2)):
        if first not in texts or second not in texts:
            both.append(None)
            continue
        verdicts = (parse_verdict(texts[first]), parse_verdict(texts[second]))
        both.append(BothOrders(verdicts, (keys[first], keys[second])))
    return Asked(both, cache_rows)


def latest_results(dataset):
    """{judge name: {domain: counts}} from each judge's latest completed pairwise job on the dataset."""
    results = {}
    for job in Job.objects.filter(dataset=dataset, kind="pairwise_judge", status__in=Job.COMPLETED).order_by(
            "-finished_at", "-pk"):
        name = job.params.get("judge_name")
        if name not in results:
            results[name] = job.counts.get("pairwise_by_domain", {})
    return results
