"""Scoring throughput: a job of N requests against the loopback OpenAI-compatible server (its own
process) answering every request after LATENCY seconds, with one judge at CONCURRENCY requests in
flight. The limit is CONCURRENCY / LATENCY requests/s. Reports the sustained rate (the middle 80%
of the job, from the progress callbacks), end-to-end rate, and the job process's RSS over time.

    .venv/bin/python bench/score.py --requests 20000 --concurrency 64
    .venv/bin/python bench/score.py --requests 20000 --concurrency 256

Uses DATABASE_URL; creates the dataset "bench-score" (N responses) once and reuses it. Every run
rescores with the cache bypassed, so every request is really sent.
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

import psutil  # noqa: E402

from annotation import jobs  # noqa: E402
from annotation.judging import CHUNK_SIZE, score_params  # noqa: E402
from annotation.models import Dataset, Judge, Prompt, Response  # noqa: E402


def ensure_dataset(n):
    name = f"bench-score-{n}"
    dataset, _ = Dataset.objects.get_or_create(name=name)
    have = Response.objects.filter(dataset=dataset).count()
    if have < n:
        Response.objects.filter(dataset=dataset).delete()
        Prompt.objects.filter(dataset=dataset).delete()
        domains = ["chat", "code", "math", "logic", "novel", "role"]
        prompts = Prompt.objects.bulk_create(
            Prompt(dataset=dataset, domain=domains[i % 6], content_hash=uuid.uuid4(), query=f"问题{i}",
                   messages=[{"role": "system", "content": "你是一个乐于助人的助手。"},
                             {"role": "user", "content": f"问题{i}：请详细解释一下量子纠缠的基本原理。" * 3}])
            for i in range(n // 4))
        Response.objects.bulk_create(
            (Response(dataset=dataset, prompt=prompts[i // 4], model="gen", content_hash=uuid.uuid4(),
                      text=f"回答{i}：量子纠缠是指两个或多个粒子之间存在的一种关联……" * 8)
             for i in range(len(prompts) * 4)), batch_size=5000)
    return dataset


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("--requests", type=int, default=20_000)
    parser.add_argument("--concurrency", type=int, default=64)
    parser.add_argument("--latency", type=float, default=0.2)
    parser.add_argument("--chunk-size", type=int, default=CHUNK_SIZE)
    parser.add_argument("--json", help="also write the figures to this file")
    args = parser.parse_args()

    server = subprocess.Popen([sys.executable, "-m", "tests.llm_server", "--latency", str(args.latency)],
                              cwd=ROOT, stdout=subprocess.PIPE, text=True)
    try:
        port = int(server.stdout.readline())
        dataset = ensure_dataset(args.requests)
        judge, _ = Judge.objects.update_or_create(
            name="bench-loopback", defaults={"base_url": f"http://127.0.0.1:{port}/v1", "model": "loopback",
                                             "max_concurrency": args.concurrency, "timeout_s": 30})
        params = score_params(dataset, [judge], rescore=True, force=True, chunk_size=args.chunk_size)
        job = jobs.create_job("score", dataset=dataset, params=params, enqueue_it=False)
        process = psutil.Process()
        samples = []  # (seconds, done, rss MiB)
        started = time.monotonic()

        def on_progress(state, counts):
            samples.append((time.monotonic() - started, state.done, process.memory_info().rss / 2**20))

        cpu_before = process.cpu_times()
        status = jobs.execute(job.pk, on_progress=on_progress)
        elapsed = time.monotonic() - started
        cpu_after = process.cpu_times()
        cpu_s = (cpu_after.user + cpu_after.system) - (cpu_before.user + cpu_before.system)
        job.refresh_from_db()
    finally:
        server.terminate()
        server.wait(10)

    limit = args.concurrency / args.latency
    lo, hi = 0.1 * job.total, 0.9 * job.total
    window = [s for s in samples if lo <= s[1] <= hi]
    sustained = (window[-1][1] - window[0][1]) / (window[-1][0] - window[0][0]) if len(window) > 1 else 0.0
    rss = [s[2] for s in samples]
    figures = {
        "status": status, "requests": job.done, "concurrency": args.concurrency, "latency_s": args.latency,
        "chunk_size": args.chunk_size, "limit_rps": round(limit, 1), "elapsed_s": round(elapsed, 1),
        "end_to_end_rps": round(job.done / elapsed, 1), "sustained_rps": round(sustained, 1),
        "sustained_pct_of_limit": round(100 * sustained / limit, 1),
        "job_process_cpu_pct": round(100 * cpu_s / elapsed, 1), "load_average_1m": os.getloadavg()[0],
        "ok": job.counts.get("ok"), "errors": job.counts.get("error"),
        "rss_mib_first_chunk": round(rss[0], 1) if rss else None,
        "rss_mib_middle": round(rss[len(rss) // 2], 1) if rss else None,
        "rss_mib_last": round(rss[-1], 1) if rss else None, "rss_mib_max": round(max(rss), 1) if rss else None,
    }
    print(json.dumps(figures, indent=2))
    if args.json:
        Path(args.json).write_text(json.dumps(figures, indent=2))


if __name__ == "__main__":
    main()
