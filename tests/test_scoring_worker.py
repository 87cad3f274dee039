"""Scoring on real Celery workers: cancel mid-job, and a worker SIGKILLed mid-job."""

import time
import uuid

import pytest
from django.db.models import Count

from annotation import jobs
from annotation.judging import WINDOW, start_scoring
from annotation.models import Dataset, Job, Judge, Judgement, Prompt, Response, Rubric
from annotation.rubrics import DEFAULT_RUBRICS

from .conftest import wait_for
from .llm_server import LLMServer

pytestmark = pytest.mark.worker


def _dataset(name, n_responses):
    for domain, text in DEFAULT_RUBRICS.items():
        Rubric.objects.get_or_create(domain=domain, version=1, defaults={"text": text})
    dataset = Dataset.objects.create(name=name)
    domains = ["chat", "code", "math", "logic", "novel", "role"]
    prompts = Prompt.objects.bulk_create(
        Prompt(dataset=dataset, domain=domains[i % 6], messages=[{"role": "user", "content": f"问题{i}"}],
               query=f"问题{i}", content_hash=uuid.uuid4()) for i in range(n_responses // 4))
    Response.objects.bulk_create(
        Response(dataset=dataset, prompt=prompts[i // 4], text=f"回答{i}", content_hash=uuid.uuid4())
        for i in range(len(prompts) * 4))
    return dataset


def _judges(server, n=2, concurrency=8):
    return [Judge.objects.create(name=f"j{i}", base_url=server.base_url, model=f"m{i}", max_concurrency=concurrency)
            for i in range(n)]


def _finished(job):
    job.refresh_from_db()
    return job.is_finished()


def test_cancel_stops_a_running_scoring_job_and_keeps_what_was_committed(thread_worker):
    with LLMServer(latency=0.05) as server:
        dataset = _dataset("cancel", 400)
        job = start_scoring(dataset, judges=_judges(server, 1, concurrency=2), chunk_size=10)

        def started():
            job.refresh_from_db()
            return job.done >= 10
        wait_for(started, timeout=60, message="the first chunk")
        jobs.request_cancel(job)
        wait_for(lambda: _finished(job), timeout=60, message="the job to stop")
        assert job.status == Job.Status.CANCELLED
        assert 0 < job.done < job.total == 400
        assert Judgement.objects.count() == job.done == job.counts["ok"]
        sent = server.requests
        time.sleep(0.5)
        assert server.requests == sent, "no request may be sent after the job stopped"


def test_a_worker_killed_mid_scoring_resumes_with_nothing_lost_duplicated_or_paid_twice(
    worker_processes, tmp_path, short_lease
):
    with LLMServer(latency=0.02, record=False) as server:
        dataset = _dataset("killed-scoring", 1200)
        judges = _judges(server, 2, concurrency=16)
        chunk = 100
        job = start_scoring(dataset, judges=judges, chunk_size=chunk)
        first = worker_processes(lease_seconds=short_lease)

        def some_chunks_done():
            job.refresh_from_db()
            return job.status == Job.Status.RUNNING and job.done >= 300
        wait_for(some_chunks_done, timeout=120, interval=0.01, message="the first chunks")
        first.kill()
        job.refresh_from_db()
        assert job.status == Job.Status.RUNNING and 0 < job.done < 2400, "must be killed mid-way"

        worker_processes(lease_seconds=short_lease)
        try:
            wait_for(lambda: _finished(job), timeout=180, interval=0.2, message="the job to finish after restart")
        finally:
            print((tmp_path / "worker.log").read_text(errors="replace")[-3000:])
        assert job.status == Job.Status.SUCCEEDED, job.error
        assert job.attempts == 2
        total = 1200 * 2
        assert job.total == job.done == total == job.counts["ok"]
        # Nothing lost, nothing duplicated: exactly one judgement per response and judge.
        assert Judgement.objects.count() == total
        per_pair = Judgement.objects.values("response", "judge").annotate(n=Count("id"))
        assert {row["n"] for row in per_pair} == {1}
        assert not Response.objects.filter(dataset=dataset).annotate(n=Count("judgements")).exclude(n=2).exists()
        # Paid twice only for the chunks that were in flight when the worker died.
        assert total <= server.requests <= total + WINDOW * chunk
