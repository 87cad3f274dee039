"""The scoring job: a panel of LLM judges scores responses 1-10 with each domain's rubric.

One workflow for the dataset page, the admin actions and `manage.py score`. The selection
(dataset, domains, pair statuses, explicit prompts / responses / pairs, judges) is a stream of
(response, judge) units read by keyset, `CHUNK_SIZE` at a time. The HTTP side runs in an asyncio
loop on a thread of its own, so the job's thread stays an ordinary Django thread: it reads the
next chunk, answers what it can from the response cache, hands the rest to the loop, and writes
the finished chunk (judgements, cache entries, counts, cursor) in one transaction while the next
chunk is already in flight. A killed worker therefore loses at most the chunks in flight
(`WINDOW`), and re-requests none that were committed; the unique constraint `judgement_unique`
makes every write an upsert, so nothing is duplicated.
"""

import asyncio
import concurrent.futures
import hashlib
import threading
import uuid
from dataclasses import dataclass
from decimal import Decimal

import orjson
from django.db import connection, transaction
from django.db.models import Max
from django.utils.translation import gettext_lazy as _
from django.utils.translation import ngettext_lazy, pgettext_lazy

from .jobs import JobContext, JobFailed, Tally, counted, create_job, failure_summary, job_kind
from .judge_client import Completion, Failure, JudgeError, JudgeSettings, open_clients, retry_policy
from .models import Domain, Judge, Rubric
from .rubrics import judge_messages
from .score_parser import parse_score

# Requests a chunk. At 320 requests/s (64 in flight, 200 ms each) a chunk of 1,000 is about 3 s of
# work and its write about 60 ms, so progress and cancel are seen every few seconds and the
# transaction stays short. Two chunks are in flight so the pipe never drains between chunks.
CHUNK_SIZE = 1000
WINDOW = 2
# While a chunk is in flight the job renews its lease and looks for a cancel this often.
HEARTBEAT_S = 1.0

SCORE_COUNTS = {
    "ok": _("Scored"),
    "parse_error": _("Parse errors"),
    "refused": _("Refusals"),
    "error": _("Errors"),
    "cached": _("From the cache"),
    "requests": _("Requests sent"),
    "input_tokens": _("Input tokens"),
    "output_tokens": _("Output tokens"),
    "cost": _("Cost"),
}


def rubric_map(version=None, domains=None):
    """{domain: rubric id}: the given version of each domain's rubric, or the latest."""
    domains = list(domains or Domain.values)
    rubrics = Rubric.objects.filter(domain__in=domains)
    if version:
        found = dict(rubrics.filter(version=version).values_list("domain", "pk"))
    else:
        latest = rubrics.values("domain").annotate(v=Max("version"))
        wanted = {row["domain"]: row["v"] for row in latest}
        found = {r.domain: r.pk for r in rubrics if wanted.get(r.domain) == r.version}
    return found


def score_params(dataset, judges, *, domains=None, rubric_version=None, rescore=False, force=False,
                 pair_statuses=None, prompt_ids=None, response_ids=None, pair_ids=None, chunk_size=CHUNK_SIZE):
    """Validate a selection and freeze it (rubric versions resolved now) as a job's params."""
    judges = list(judges)
    if not judges:
        raise ValueError("choose at least one judge")
    for judge in judges:
        if not judge.base_url or not judge.model:
            raise ValueError(f"judge {judge.name} has no base URL or model id (its scores were imported)")
    rubrics = rubric_map(rubric_version, domains)
    if not rubrics:
        which = f"version {rubric_version}" if rubric_version else "a rubric"
        raise ValueError(f"no domain of {', '.join(domains or Domain.values)} has {which}")
    return {
        "judge_ids": sorted(j.pk for j in judges),
        "judges": sorted(j.name for j in judges),
        "rubrics": rubrics,
        "rubric_version": rubric_version,
        "rescore": bool(rescore),
        "force": bool(force),
        "pair_statuses": list(pair_statuses or []),
        "prompt_ids": list(prompt_ids or []),
        "response_ids": list(response_ids or []),
        "pair_ids": list(pair_ids or []),
        "chunk_size": chunk_size,
    }


def start_scoring(dataset, user=None, judges=(), **options):
    return create_job("score", dataset=dataset, user=user, params=score_params(dataset, judges, **options))


@dataclass
class Unit:
    response_id: int
    judge_id: int
    rubric_id: int
    key: uuid.UUID = None
    messages: list = None
    cached: tuple = None


class Selection:
    """The (response, judge) units a job's params select, in (response id, judge id) order."""

    def __init__(self, dataset_id, params):
        self.params = params
        domains, rubric_ids = zip(*sorted(params["rubrics"].items()))
        self.args = {
            "dataset": dataset_id, "domains": list(domains), "rubric_ids": list(rubric_ids),
            "judges": params["judge_ids"], "pair_statuses": params["pair_statuses"] or None,
            "prompt_ids": params["prompt_ids"] or None, "response_ids": params["response_ids"] or None,
            "pair_ids": params["pair_ids"] or None,
        }

    def _from_where(self):
        p = self.params
        where = ["r.dataset_id = %(dataset)s"]
        if p["prompt_ids"]:
            where.append("r.prompt_id = ANY(%(prompt_ids)s)")
        if p["response_ids"]:
            where.append("r.id = ANY(%(response_ids)s)")
        if p["pair_statuses"] or p["pair_ids"]:
            pairs = "pa.dataset_id = %(dataset)s"
            if p["pair_statuses"]:
                pairs += " AND pa.status = ANY(%(pair_statuses)s)"
            if p["pair_ids"]:
                pairs += " AND pa.id = ANY(%(pair_ids)s)"
            where.append(
                f"r.id IN (SELECT pa.chosen_id FROM annotation_pair pa WHERE {pairs}"
                f" UNION SELECT pa.rejected_id FROM annotation_pair pa WHERE {pairs})"
            )
        if not p["rescore"]:
            # Errors are not answers: a later run tries them again.
            where.append(
                "NOT EXISTS (SELECT 1 FROM annotation_judgement g WHERE g.response_id = r.id"
                " AND g.judge_id = j.id AND g.rubric_id = rb.rubric_id AND g.status <> 'error')"
            )
        return (
            "FROM annotation_response r JOIN annotation_prompt p ON p.id = r.prompt_id"
            " JOIN unnest(%(domains)s::text[], %(rubric_ids)s::bigint[]) AS rb(domain, rubric_id) ON rb.domain = p.domain"
            " CROSS JOIN unnest(%(judges)s::bigint[]) AS j(id) WHERE " + " AND ".join(where)
        )

    def count(self):
        with connection.cursor() as cursor:
            cursor.execute("SELECT count(*) " + self._from_where(), self.args)
            return cursor.fetchone()[0]

    def next_units(self, after, limit):
        sql = ("SELECT r.id, j.id, rb.rubric_id " + self._from_where()
               + " AND (r.id, j.id) > (%(after_r)s, %(after_j)s) ORDER BY r.id, j.id LIMIT %(limit)s")
        with connection.cursor() as cursor:
            cursor.execute(sql, {**self.args, "after_r": after[0], "after_j": after[1], "limit": limit})
            return [Unit(*row) for row in cursor.fetchall()]


def request_key(judge, rubric_id, messages):
    """Identifies a request by all that decides its answer: judge, model, rubric version, messages."""
    material = orjson.dumps([judge.pk, judge.model, rubric_id, judge.temperature, judge.max_tokens, messages])
    return uuid.UUID(bytes=hashlib.blake2b(material, digest_size=16).digest())


def _prepare(units, judges, rubric_texts, use_cache):
    """Build each unit's messages and cache key, and attach cached answers."""
    ids = sorted({u.response_id for u in units})
    with connection.cursor() as cursor:
        cursor.execute(
            "SELECT r.id, r.text, p.messages FROM annotation_response r JOIN annotation_prompt p ON p.id = r.prompt_id"
            " WHERE r.id = ANY(%s)", [ids])
        texts = {rid: (text, messages if isinstance(messages, list) else orjson.loads(messages))
                 for rid, text, messages in cursor.fetchall()}
    for unit in units:
        text, prompt_messages = texts[unit.response_id]
        unit.messages = judge_messages(rubric_texts[unit.rubric_id], prompt_messages, text)
        unit.key = request_key(judges[unit.judge_id], unit.rubric_id, unit.messages)
    if use_cache:
        with connection.cursor() as cursor:
            cursor.execute(
                "SELECT key, raw_output, input_tokens, output_tokens, cost, latency_ms FROM annotation_judgecacheentry"
                " WHERE key = ANY(%s::uuid[])", [[u.key for u in units]])
            cached = {row[0]: row[1:] for row in cursor.fetchall()}
        for unit in units:
            unit.cached = cached.get(unit.key)
    return units


class _LoopThread:
    """An asyncio loop on a thread of its own, holding one HTTP session and a client per judge."""

    def __init__(self, judges):
        self.loop = asyncio.new_event_loop()
        self.thread = threading.Thread(target=self.loop.run_forever, name="judge-http", daemon=True)
        self.thread.start()
        settings_ = [JudgeSettings.of(j) for j in judges.values()]
        retry = retry_policy()
        try:
            self.session, self.clients = self.call(open_clients(settings_, retry))
        except BaseException:
            self.close()
            raise

    def call(self, coro):
        return asyncio.run_coroutine_threadsafe(coro, self.loop).result()

    def submit(self, units):
        return asyncio.run_coroutine_threadsafe(self._complete_all(units), self.loop)

    async def _complete_all(self, units):
        tasks = [asyncio.ensure_future(self.clients[u.judge_id].complete(u.messages)) for u in units]
        try:
            await asyncio.wait(tasks, return_when=asyncio.FIRST_EXCEPTION)
        finally:
            for task in tasks:
                task.cancel()
        finished = [t.done() and not t.cancelled() and t.exception() is None for t in tasks]
        failed = next((t.exception() for t in tasks if t.done() and not t.cancelled() and t.exception()), None)
        if failed is not None:
            # A permanent error stops the job; the answers already paid for go to the cache.
            failed.answered = [(u, t.result()) for u, t, ok in zip(units, tasks, finished)
                               if ok and isinstance(t.result(), Completion)]
            raise failed
        return [t.result() for t in tasks]

    def close(self):
        async def shutdown():
            for task in asyncio.all_tasks():
                if task is not asyncio.current_task():
                    task.cancel()
            if getattr(self, "session", None) is not None:
                await self.session.close()

        if self.loop.is_running():
            asyncio.run_coroutine_threadsafe(shutdown(), self.loop).result(30)
            self.loop.call_soon_threadsafe(self.loop.stop)
        self.thread.join(30)
        self.loop.close()


# Every response × judge is an item, answered or from the cache; one that got no score (failed request,
# unparseable answer, refusal) is a failure: a job where every request failed is a failed job.
SCORE_TALLY = Tally(
    items=counted("ok", "parse_error", "refused", "error"), failures=counted("parse_error", "refused", "error"),
    summary=ngettext_lazy("%(failed)s of %(items)s request gave no score",
                          "%(failed)s of %(items)s requests gave no score", "n"),
)


@job_kind("score", label=pgettext_lazy("job kind", "score"), unit="requests", counts=SCORE_COUNTS, tally=SCORE_TALLY,
          errors_heading=_("Responses not scored"), error_place=_("Response"))
def run_score(ctx: JobContext):
    params = ctx.params
    judges = {j.pk: j for j in Judge.objects.filter(pk__in=params["judge_ids"])}
    missing = set(params["judge_ids"]) - set(judges)
    if missing:
        raise JobFailed(f"judges {sorted(missing)} were deleted")
    rubric_ids = {int(pk) for pk in params["rubrics"].values()}
    rubric_texts = dict(Rubric.objects.filter(pk__in=rubric_ids).values_list("pk", "text"))
    selection = Selection(ctx.job.dataset_id, params)
    if not ctx.job.total:
        ctx.set_total(selection.count())
    try:
        http = _LoopThread(judges)
    except JudgeError as exc:
        raise JobFailed(str(exc)) from None
    try:
        _ScoreRun(ctx, selection, judges, rubric_texts, http).run()
    finally:
        http.close()


class _ScoreRun:
    def __init__(self, ctx, selection, judges, rubric_texts, http):
        self.ctx, self.selection, self.judges, self.rubric_texts, self.http = ctx, selection, judges, rubric_texts, http
        self.chunk_size = ctx.params.get("chunk_size", CHUNK_SIZE)
        self.force = ctx.params["force"]
        self.rescore = ctx.params["rescore"]
        cursor = ctx.cursor
        self.after = (cursor.get("response", 0), cursor.get("judge", 0))
        self.exhausted = False

    def run(self):
        pending = []
        try:
            while True:
                while len(pending) < WINDOW and not self.exhausted:
                    pending.append(self._launch())
                if not pending:
                    return
                units, future = pending.pop(0)
                results = self._wait(future) if future else []
                self._write(units, results)
        except JudgeError as exc:
            answered = getattr(exc, "answered", [])
            if answered:
                with transaction.atomic():
                    _store_cache([_cache_row(u, r, self.judges[u.judge_id]) for u, r in answered], replace=self.force)
            raise JobFailed(str(exc)) from None
        finally:
            for _units, future in pending:
                if future:
                    future.cancel()

    def _launch(self):
        units = self.selection.next_units(self.after, self.chunk_size)
        if len(units) < self.chunk_size:
            self.exhausted = True
        if not units:
            return [], None
        self.after = (units[-1].response_id, units[-1].judge_id)
        _prepare(units, self.judges, self.rubric_texts, use_cache=not self.force)
        to_send = [u for u in units if u.cached is None]
        return units, (self.http.submit(to_send) if to_send else None)

    def _wait(self, future):
        while True:
            try:
                return future.result(timeout=HEARTBEAT_S)
            except concurrent.futures.TimeoutError:
                self.ctx.heartbeat()

    def _write(self, units, results):
        if not units:
            with transaction.atomic():
                self.ctx.commit(cursor={"response": self.after[0], "judge": self.after[1]})
            return
        fresh = iter(results)
        counts = dict.fromkeys(SCORE_COUNTS, 0)
        rows, cache_rows, errors = [], [], []
        for unit in units:
            judge = self.judges[unit.judge_id]
            if unit.cached is not None:
                raw, tokens_in, tokens_out, cost, latency = unit.cached
                counts["cached"] += 1
                outcome = parse_score(raw)
            else:
                result = next(fresh)
                counts["requests"] += 1
                if isinstance(result, Failure):
                    rows.append(_row(unit, None, "error", result.message, _clean(result.raw), 0, 0, Decimal(0), None))
                    counts["error"] += 1
                    errors.append(_error(unit, judge, f"error: {result.message}", result.raw))
                    continue
                cache_rows.append(_cache_row(unit, result, judge))
                _key, _judge, raw, tokens_in, tokens_out, cost, latency = cache_rows[-1]
                counts["input_tokens"] += tokens_in
                counts["output_tokens"] += tokens_out
                counts["cost"] += float(cost)
                outcome = parse_score(raw)
            counts[outcome.status] += 1
            rows.append(_row(unit, outcome.score, outcome.status, _clean(outcome.analysis), raw,
                             tokens_in, tokens_out, cost, latency))
            if outcome.status != "ok":
                errors.append(_error(unit, judge, f"{outcome.status}: {outcome.reason}", raw))
        counts["cost"] = round(counts["cost"], 6)
        # Answers are committed to the cache first, on their own: if the chunk is then cancelled,
        # or the worker dies before the next commit, a later run still never pays for them again.
        with transaction.atomic():
            _store_cache(cache_rows, replace=self.force)
        with transaction.atomic():
            _upsert_judgements(rows, update_all=self.rescore)
            self.ctx.commit(done=len(units), counts=counts, errors=errors,
                            cursor={"response": units[-1].response_id, "judge": units[-1].judge_id})


def _cache_row(unit, completion, judge):
    tokens_in, tokens_out = completion.input_tokens, completion.output_tokens
    return (unit.key, unit.judge_id, _clean(completion.text), tokens_in, tokens_out, _cost(judge, tokens_in, tokens_out),
            completion.latency_ms)


def _row(unit, score, status, analysis, raw, tokens_in, tokens_out, cost, latency):
    return (unit.response_id, unit.judge_id, unit.rubric_id, score, analysis, raw, status, tokens_in, tokens_out,
            cost, latency)


def _error(unit, judge, reason, raw):
    excerpt = (raw or "")[:300]
    return {"line": unit.response_id, "reason": f"response {unit.response_id}, judge {judge.name}: {reason}",
            "excerpt": excerpt}


def _cost(judge, tokens_in, tokens_out):
    cost = (Decimal(tokens_in) * judge.price_input_per_m + Decimal(tokens_out) * judge.price_output_per_m) / 10**6
    return cost.quantize(Decimal("0.000001"))


def _clean(text):
    # PostgreSQL text cannot hold NUL; a model that emits one loses only that character.
    return (text or "").replace("\x00", "")


def _upsert_judgements(rows, update_all):
    if not rows:
        return
    columns = list(zip(*rows))
    # Rescoring updates the row in place (one per response × judge × rubric version); a plain
    # run only replaces errors, so a killed-and-resumed chunk rewrites what it wrote, no more.
    condition = "" if update_all else " WHERE annotation_judgement.status = 'error'"
    with connection.cursor() as cursor:
        cursor.execute(
            "INSERT INTO annotation_judgement (response_id, judge_id, rubric_id, score, analysis, raw_output, status,"
            " input_tokens, output_tokens, cost, latency_ms, created_at)"
            " SELECT *, now() FROM unnest(%s::bigint[], %s::bigint[], %s::bigint[], %s::float8[], %s::text[],"
            " %s::text[], %s::text[], %s::int[], %s::int[], %s::numeric[], %s::int[])"
            " ON CONFLICT ON CONSTRAINT judgement_unique DO UPDATE SET score = EXCLUDED.score,"
            " analysis = EXCLUDED.analysis, raw_output = EXCLUDED.raw_output, status = EXCLUDED.status,"
            " input_tokens = EXCLUDED.input_tokens, output_tokens = EXCLUDED.output_tokens, cost = EXCLUDED.cost,"
            " latency_ms = EXCLUDED.latency_ms, created_at = EXCLUDED.created_at" + condition,
            [list(c) for c in columns],
        )


def _store_cache(rows, replace):
    if not rows:
        return
    columns = list(zip(*rows))
    action = (
        "DO UPDATE SET raw_output = EXCLUDED.raw_output, input_tokens = EXCLUDED.input_tokens,"
        " output_tokens = EXCLUDED.output_tokens, cost = EXCLUDED.cost, latency_ms = EXCLUDED.latency_ms,"
        " created_at = EXCLUDED.created_at"
        if replace else "DO NOTHING"
    )
    with connection.cursor() as cursor:
        cursor.execute(
            "INSERT INTO annotation_judgecacheentry (key, judge_id, raw_output, input_tokens, output_tokens, cost,"
            " latency_ms, created_at) SELECT *, now() FROM unnest(%s::uuid[], %s::bigint[], %s::text[], %s::int[],"
            " %s::int[], %s::numeric[], %s::int[]) ON CONFLICT (key) " + action,
            [list(c) for c in columns],
        )


def score_report(job):
    """What `manage.py score --report-json` writes: counts by status, tokens, cost."""
    counts = job.counts
    return {
        "job": job.pk,
        "status": job.status,
        "error": job.error,
        "problems": str(failure_summary(job)) or None,
        "judges": job.params.get("judges", []),
        "requests_planned": job.total,
        "done": job.done,
        "by_status": {key: counts.get(key, 0) for key in ("ok", "parse_error", "refused", "error")},
        "cached": counts.get("cached", 0),
        "paid_requests": counts.get("requests", 0),
        "input_tokens": counts.get("input_tokens", 0),
        "output_tokens": counts.get("output_tokens", 0),
        "cost": counts.get("cost", 0),
    }
