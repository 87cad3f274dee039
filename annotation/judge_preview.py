"""Trying a judge on a few responses before it scores a dataset: the raw answers and what the score
parser reads in them, nothing stored.

The requests go through the same client and provider as scoring (judge_client.py, judge_providers.py)
and the answers through the same parser (score_parser.py), so what the preview shows is what a scoring
job would store. It runs inside the web request, so it is bounded: at most PREVIEW_RESPONSES requests,
no retries, each cut at PREVIEW_TIMEOUT_S and all of them at PREVIEW_TOTAL_S.
"""

import asyncio
import dataclasses
import os

from .judge_client import Failure, JudgeError, JudgeSettings, Retry, check_env_name, judge_clients
from .judging import rubric_map
from .models import Response, Rubric
from .rubrics import judge_messages
from .score_parser import parse_score

PREVIEW_RESPONSES = 5
PREVIEW_TIMEOUT_S = 30.0  # a judge that thinks longer than this is tried by a scoring job, not a page
PREVIEW_TOTAL_S = 45.0  # under gunicorn's default 60 s worker timeout


@dataclasses.dataclass
class PreviewRow:
    response: Response
    rubric: Rubric | None
    raw: str = ""
    parsed: object = None  # a ParsedScore when the judge answered
    error: str = ""


def key_problem(judge):
    """Why this web process cannot send the judge's key, or "" when it can (or the judge needs none)."""
    if not judge.api_key_env:
        return ""
    try:
        check_env_name(judge.api_key_env)
    except ValueError as exc:
        return str(exc)
    if not os.environ.get(judge.api_key_env):
        return f"the environment variable {judge.api_key_env} is not set in the web process"
    return ""


def preview_responses(dataset, domain="", limit=PREVIEW_RESPONSES):
    """The first `limit` responses of the dataset (of one domain when given), in id order, so that
    trying two judges or two settings asks about the same answers."""
    responses = Response.objects.filter(prompt__dataset=dataset).select_related("prompt").order_by("pk")
    if domain:
        responses = responses.filter(prompt__domain=domain)
    return list(responses[:limit])


def run_preview(judge, responses):
    """One PreviewRow per response (at most PREVIEW_RESPONSES), each with the judge's raw answer and the
    parsed score, or the error that stopped it. Raises JudgeError when the judge cannot be asked at all
    (no base URL or model, unknown provider, key variable refused or unset)."""
    responses = responses[:PREVIEW_RESPONSES]
    if not judge.base_url or not judge.model:
        raise JudgeError(f"{judge.name}: set a base URL and a model id first", permanent=True)
    ids = rubric_map(domains=sorted({r.prompt.domain for r in responses}))
    rubrics = Rubric.objects.in_bulk(ids.values())
    rows = [PreviewRow(response=r, rubric=rubrics.get(ids.get(r.prompt.domain))) for r in responses]
    settings = dataclasses.replace(JudgeSettings.of(judge), timeout_s=min(judge.timeout_s, PREVIEW_TIMEOUT_S),
                                   max_concurrency=min(judge.max_concurrency, PREVIEW_RESPONSES) or 1)
    asyncio.run(_ask_all(settings, rows))
    return rows


async def _ask_all(settings, rows):
    async with judge_clients([settings], Retry(policy_max=0)) as clients:
        client = clients[settings.pk]

        async def ask(row):
            if row.rubric is None:
                row.error = f"no rubric for the domain {row.response.prompt.domain}"
                return
            messages = judge_messages(row.rubric.text, row.response.prompt.messages, row.response.text)
            try:
                result = await client.complete(messages)
            except JudgeError as exc:
                row.error = str(exc)
                return
            if isinstance(result, Failure):
                row.error, row.raw = result.message, result.raw
                return
            row.raw = result.text
            row.parsed = parse_score(result.text)

        tasks = [asyncio.ensure_future(ask(row)) for row in rows]
        _, pending = await asyncio.wait(tasks, timeout=PREVIEW_TOTAL_S)
        for task in pending:
            task.cancel()
        for row, task in zip(rows, tasks):
            if task in pending:
                row.error = f"no answer within the preview's {PREVIEW_TOTAL_S:g} s"
