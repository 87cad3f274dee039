"""Pairwise re-judging throughput: a `pairwise_rejudge` job over N pairs against the loopback
OpenAI-compatible server (its own process) answering every request after LATENCY seconds, the judge at
CONCURRENCY requests in flight. Each pair is two requests (both orders), so the limit is
CONCURRENCY / (2 × LATENCY) pairs/s. Reports the sustained rate (the middle 80% of the job, from the
progress callbacks) and the end-to-end rate.

    .venv/bin/python bench/rejudge.py --pairs 4000 --concurrency 64

Uses DATABASE_URL; creates the dataset "bench-rejudge-N" once and reuses it. The judge's cached answers
are deleted before each run, so every request is really sent. The loopback server's answer holds no
[[A]]/[[B]] verdict: the pairs count as "no verdict", which costs the job what a verdict does.
"""

import argparse
import json
import os
import subprocess
import sys
import time
import uuid
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
os.environ.setdefault("DJANGO_SETTINGS_MODULE", "coigp_web.settings")

import django  # noqa: E402

django.setup()

from annotation import jobs  # noqa: E402
from annotation.models import Dataset, Judge, JudgeCacheEntry, Pair, Prompt, Response  # noqa: E402
from annotation.rejudging import start_rejudge  # noqa: E402


def ensure_dataset(n):
    dataset, _ = Dataset.objects.get_or_create(name=f"bench-rejudge-{n}")
    if Pair.objects.filter(dataset=dataset).count() < n:
        Prompt.objects.filter(dataset=dataset).delete()
        domains = ["chat", "code", "math", "logic", "novel", "role"]
        prompts = Prompt.objects.bulk_create(
            Prompt(dataset=dataset, domain=domains[i % 6], content_hash=uuid.uuid4(), query=f"问题{i}",
                   messages=[{"role": "user", "content": f"问题{i}：请详细解释一下量子纠缠的基本原理。" * 3}])
            for i in range(n))
        responses = Response.objects.bulk_create(
            (Response(dataset=dataset, prompt=prompts[i // 2], model="gen", content_hash=uuid.uuid4(),
                      text=f"回答{i}：量子纠缠是指两个或多个粒子之间存在的一种关联……" * 8)
             for i in range(2 * n)), batch_size=5000)
        Pair.objects.bulk_create(
            (Pair(dataset=dataset, prompt=p, domain=p.domain, chosen=responses[2 * i], rejected=responses[2 * i + 1])
             for i, p in enumerate(prompts)), batch_size=5000)
    return dataset


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("--pairs", type=int, default=4000)
    parser.add_argument("--concurrency", type=int, default=64)
    parser.add_argument("--latency", type=float, default=0.2)
    args = parser.parse_args()

    server = subprocess.Popen([sys.executable, "-m", "tests.llm_server", "--latency", str(args.latency)],
                              cwd=ROOT, stdout=subprocess.PIPE, text=True)
    try:
        port = int(server.stdout.readline())
        dataset = ensure_dataset(args.pairs)
        judge, _ = Judge.objects.update_or_create(
            name="bench-pairwise", defaults={"base_url": f"http://127.0.0.1:{port}/v1", "model": "loopback",
                                             "max_concurrency": args.concurrency, "timeout_s": 30})
        JudgeCacheEntry.objects.filter(judge=judge).delete()
        started = time.monotonic()
        job = start_rejudge(dataset, judge, Pair.objects.filter(dataset=dataset).order_by("pk"), enqueue_it=False)
        samples = []  # (seconds, done)
        status = jobs.execute(job.pk, on_progress=lambda state, counts: samples.append(
            (time.monotonic() - started, state.done)))
        elapsed = time.monotonic() - started
        job.refresh_from_db()
    finally:
        server.terminate()
        server.wait(10)

    limit = args.concurrency / (2 * args.latency)
    lo, hi = 0.1 * job.total, 0.9 * job.total
    window = [s for s in samples if lo <= s[1] <= hi]
    sustained = (window[-1][1] - window[0][1]) / (window[-1][0] - window[0][0]) if len(window) > 1 else 0.0
    print(json.dumps({
        "status": status, "pairs": job.done, "concurrency": args.concurrency, "latency_s": args.latency,
        "limit_pairs_per_s": round(limit, 1), "elapsed_s": round(elapsed, 1),
        "end_to_end_pairs_per_s": round(job.done / elapsed, 1), "sustained_pairs_per_s": round(sustained, 1),
        "sustained_pct_of_limit": round(100 * sustained / limit, 1), "load_average_1m": os.getloadavg()[0],
        "counts": job.counts,
    }, indent=2))


if __name__ == "__main__":
    main()
