"""Page benchmark: server time of every dashboard page on a large dataset.

    .venv/bin/python bench/pages.py [--pairs 100000] [--seed 1] [--repeat 20] [--dataset NAME] [--keep]

Without --dataset it generates the COIG-P-shaped file (bench/generate.py), imports it with the
import job (as bench/ingest.py does, without the near-duplicate check), then adds by SQL what the
dashboards read: generator models on the responses, four judges scoring every response (1 % parse
failures), panel scores on the pairs, a reward model's scores, filtered pairs, and reviews on 2 %
of the pairs (a quarter of them reviewed twice). With --dataset it uses that dataset as it is.

It then runs the jobs that precompute what the pages read (the dashboard refresh and the quality
count, timed per step), requests each page of `pages()` through Django's test client, logged in as a
superuser, and reports the server time (the whole request in this process, no network): the first
request and p50 / p95 over --repeat more. A list of a materialised view (review/members.py) is marked
"stored" when it read the members the jobs stored, "live" when it ran the live query.
"""

import argparse
import os
import platform
import re
import statistics
import sys
import time
from pathlib import Path
from urllib.parse import quote

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "bench"))
os.environ.setdefault("DJANGO_SETTINGS_MODULE", "coigp_web.settings")

JUDGES = [("bench-qwen", "qwen"), ("bench-gpt", "gpt"), ("bench-deepseek", "deepseek"), ("bench-glm", "glm")]
MODELS = ["Qwen2-72B-Instruct", "gpt-4o", "deepseek-chat", "glm-4", "Yi-1.5-34B", "Baichuan2-13B"]


def pages(dataset, judge_ids):
    """(name, url) of every page to time: dashboards, the lists behind their numbers, the low-quality
    rules, browse and search, and a pair page."""
    from django.urls import reverse

    from review.selections import selections_in

    ds = dataset.pk
    out = [("dataset page", reverse("dataset-detail", args=[ds])),
           ("overview", reverse("dataset-overview", args=[ds])),
           ("disagreements", reverse("disagreements", args=[ds])),
           ("disagreements ?domain=math", reverse("disagreements", args=[ds]) + "?domain=math&sort=name"),
           ("judges", reverse("judge-analysis", args=[ds]))]
    out += [(f"judge {pk}", reverse("judge-detail", args=[ds, pk])) for pk in judge_ids]
    # The list behind each disagreement count and each low-quality rule (first page).
    out += [(f"pair list view={v.name}", reverse("pair-list", args=[ds]) + f"?view={v.name}")
            for v in selections_in("disagreement") + selections_in("quality")]
    pair_list = reverse("pair-list", args=[ds])
    out += [("quality rules", reverse("quality-rules", args=[ds])),
            ("pair list", pair_list),
            ("pair list ?domain=math&status=pending", pair_list + "?domain=math&status=pending"),
            ("search 3+ characters", pair_list + "?q=" + quote("请解释")),
            ("search 2 characters", pair_list + "?q=" + quote("代码"))]
    # Each sort of the list: its first page, and the page that starts at the pair in the middle of the dataset's
    # ids (somewhere deep in that order; keyset, so it should cost what the first does).
    from review.selections import ORDERS

    ids = dataset.pairs.order_by("pk").values_list("pk", flat=True)
    middle = ids[ids.count() // 2] if ids.exists() else None
    for order in [o for o in ORDERS if o]:
        out.append((f"pair list order={order}", pair_list + f"?order={order}"))
        if middle is not None:
            out.append((f"pair list order={order} deep page", pair_list + f"?order={order}&at={middle}"))
    out.append(("pair list order=gap&domain=math", pair_list + "?order=gap&domain=math"))
    first_pair = dataset.pairs.order_by("pk").values_list("pk", flat=True).first()
    if first_pair is not None:
        out.append(("pair page", reverse("pair-detail", args=[ds, first_pair])))
    return out


def load(args):
    """The benchmark dataset: imported from the generated file, then scored, rewarded and reviewed by SQL."""
    from generate import import_generated

    from annotation import jobs
    from annotation.models import Dataset

    dataset = Dataset.objects.create(name=f"pages bench {args.pairs} pairs {time.strftime('%Y-%m-%d %H:%M:%S')}")
    job, seconds = import_generated(dataset, args.pairs, args.seed)
    print(f"imported {args.pairs:,} pairs in {seconds:.1f} s")
    from review import search

    started = time.perf_counter()
    jobs.execute(jobs.follow_up_of(job, search.KIND).pk)  # the search-index job every import is followed by
    print(f"search-index job in {time.perf_counter() - started:.1f} s")
    started = time.perf_counter()
    enrich(dataset)
    print(f"added models, judgements, panel scores, rewards, filters and reviews in "
          f"{time.perf_counter() - started:.1f} s")
    return dataset


def enrich(dataset):
    from django.contrib.auth import get_user_model
    from django.db import connection, transaction

    from annotation.models import Judge, RewardModel

    judge_ids = [Judge.objects.get_or_create(name=name, defaults={"family": family})[0].pk
                 for name, family in JUDGES]
    crm, _ = RewardModel.objects.get_or_create(name=f"bench-crm-{dataset.pk}", backend="builtin", trained_on=dataset)
    User = get_user_model()
    reviewers = [User.objects.get_or_create(username=f"bench-reviewer-{i}")[0].pk for i in (1, 2)]
    ds = dataset.pk
    with transaction.atomic(), connection.cursor() as c:
        c.execute("UPDATE annotation_response SET model = (%s::text[])[1 + id %% %s] WHERE dataset_id = %s",
                  [MODELS, len(MODELS), ds])
        # Each response has a latent quality; each judge adds its own bias and noise; 1 % fail to parse.
        c.execute(
            """INSERT INTO annotation_judgement (response_id, judge_id, rubric_id, score, analysis, raw_output,
                                                 status, input_tokens, output_tokens, cost, created_at)
               SELECT r.id, j, NULL,
                      CASE WHEN fail THEN NULL ELSE
                        least(10, greatest(1, round((q.v + (j %% 3) - 1 + random() * 2)::numeric, 1))) END,
                      '分析', '', CASE WHEN fail THEN 'parse_error' ELSE 'ok' END, 800, 120, 0.0012, now()
               FROM annotation_response r
               CROSS JOIN LATERAL (SELECT 1 + (hashtext(r.id::text) & 1023) / 1023.0 * 7 AS v) q
               CROSS JOIN unnest(%s::bigint[]) j
               CROSS JOIN LATERAL (SELECT random() < 0.01 AS fail) f
               WHERE r.dataset_id = %s""",
            [judge_ids, ds])
        # A scratch table with statistics: a CTE joined twice is planned as a nested loop.
        c.execute(
            """CREATE TEMPORARY TABLE bench_panel ON COMMIT DROP AS
               SELECT j.response_id, avg(j.score) AS s FROM annotation_judgement j
               JOIN annotation_response r ON r.id = j.response_id
               WHERE r.dataset_id = %s AND j.status = 'ok' GROUP BY 1""",
            [ds])
        c.execute("CREATE UNIQUE INDEX ON bench_panel (response_id); ANALYZE bench_panel")
        c.execute(
            """UPDATE annotation_pair q SET chosen_score = c.s, rejected_score = r.s
               FROM bench_panel c, bench_panel r WHERE q.dataset_id = %s AND c.response_id = q.chosen_id
                 AND r.response_id = q.rejected_id""",
            [ds])
        c.execute(
            """INSERT INTO annotation_rewardscore (response_id, reward_model_id, reward, created_at)
               SELECT r.id, %s, (hashtext(r.id::text) & 1023) / 1023.0 * 4 - 2 + random(), now()
               FROM annotation_response r WHERE r.dataset_id = %s""",
            [crm.pk, ds])
        c.execute(
            """WITH m AS (
                   SELECT q.id, sc.reward - sr.reward AS margin FROM annotation_pair q
                   JOIN annotation_rewardscore sc ON sc.response_id = q.chosen_id AND sc.reward_model_id = %s
                   JOIN annotation_rewardscore sr ON sr.response_id = q.rejected_id AND sr.reward_model_id = %s
                   WHERE q.dataset_id = %s)
               UPDATE annotation_pair q SET status = 'filtered',
                      status_reason = %s || ' margin=' || round(m.margin::numeric, 4)::text || ' was=pending'
               FROM m WHERE q.id = m.id AND m.margin <= 0""",
            [crm.pk, crm.pk, ds, crm.tag()])
        for reviewer, share in zip(reviewers, (50, 200)):
            c.execute(
                """INSERT INTO review_review (pair_id, reviewer_id, verdict, better_correct, prompt_ok, note,
                                              created_at, updated_at, dataset_id, domain)
                   SELECT id, %s, (ARRAY['chosen_better','chosen_better','chosen_better','rejected_better','tie',
                                         'both_bad'])[1 + (id * 7 + %s) %% 6], NULL, NULL, '', now(), now(),
                          dataset_id, domain
                   FROM annotation_pair WHERE dataset_id = %s AND id %% %s = 0""",
                [reviewer, reviewer, ds, share])
        c.execute("ANALYZE annotation_judgement; ANALYZE annotation_pair; ANALYZE annotation_rewardscore; "
                  "ANALYZE annotation_response; ANALYZE review_review")
    return judge_ids


def run_jobs(dataset, kinds):
    """Run the jobs that precompute what the pages read, as a worker would once a job of the dataset
    finished: the dashboard refresh (snapshots and the disagreement views' members) and the quality
    count (counts and the low-quality rules' members). Prints the time of each step."""
    from annotation import jobs
    from review import dashboards, quality_rules

    from review import search

    for kind, steps, title in [(search.KIND, [], "search-index job (a dataset imported before it existed)"),
                               (dashboards.REFRESH_KIND, list(dashboards.COMPUTE), "dashboard refresh job"),
                               ("quality_counts", [r.name for r in quality_rules.rules()], "quality count job")]:
        if kind not in kinds:
            continue
        print(f"\n{title}, per step:")
        job = jobs.create_job(kind, dataset=dataset, enqueue_it=False)
        clock = [time.perf_counter(), time.perf_counter()]

        def step_done(job, counts, clock=clock, steps=steps, seen=[0]):
            now = time.perf_counter()
            if not steps:  # a job without named steps: only its whole time is printed
                return
            step = steps[job.done - 1] if job.done > seen[0] else "(preparation)"  # a commit that counts no step
            seen[0] = job.done
            print(f"  {step:<24} {(now - clock[0]) * 1000:9.0f} ms", flush=True)
            clock[0] = now

        status = jobs.execute(job.pk, on_progress=step_done)
        print(f"  {'(whole job)':<24} {(time.perf_counter() - clock[1]) * 1000:9.0f} ms  {status}")


def percentile(values, p):
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, round(p / 100 * (len(ordered) - 1)))]


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--pairs", type=int, default=100_000)
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument("--repeat", type=int, default=20)
    parser.add_argument("--dataset", help="time the pages of this existing dataset instead")
    parser.add_argument("--keep", action="store_true", help="keep the generated dataset afterwards")
    parser.add_argument("--enrich", action="store_true",
                        help="with --dataset: first add judges, rewards, filters and reviews to it, as for a new one")
    parser.add_argument("--pages", help="time only the pages whose name matches this regular expression")
    parser.add_argument("--jobs", default="dashboard_refresh,quality_counts",
                        help="the precomputing jobs to run before timing (comma-separated kinds; '' for none; "
                             "search_index too for a dataset imported before search indexing existed)")
    args = parser.parse_args()

    import django

    django.setup()
    from django.contrib.auth import get_user_model
    from django.db import connection
    from django.test import Client

    from annotation.models import Dataset, Judge

    print(f"machine: {os.cpu_count()} cores, Python {platform.python_version()}, PostgreSQL "
          f"{connection.cursor().connection.info.server_version}, load average {os.getloadavg()[0]:.1f} "
          "(others share this CPU: the load average says how much)")
    dataset = Dataset.objects.get(name=args.dataset) if args.dataset else load(args)
    if args.dataset and args.enrich:
        enrich(dataset)
    print(f"dataset {dataset.name!r}: {dataset.pairs.count():,} pairs")
    user = get_user_model().objects.filter(is_superuser=True).first() or get_user_model().objects.create_superuser(
        "bench-admin", password=None)
    client = Client(SERVER_NAME="127.0.0.1")
    client.force_login(user)
    judge_ids = list(Judge.objects.filter(judgements__response__dataset=dataset).distinct()
                     .values_list("pk", flat=True))

    run_jobs(dataset, args.jobs.split(","))

    print(f"\n{'page':<42} {'first':>9} {'p50':>8} {'p95':>8}   (ms, {args.repeat} requests after the first)")
    failures = 0
    for name, url in pages(dataset, judge_ids):
        if args.pages and not re.search(args.pages, name):
            continue
        started = time.perf_counter()
        response = client.get(url)
        first = (time.perf_counter() - started) * 1000
        html = response.content.decode()
        if response.status_code != 200 or 'id="dashboard-pending"' in html:
            print(f"{name:<42} HTTP {response.status_code}{' (still being computed)' if response.status_code == 200 else ''}")
            failures += 1
            continue
        # A list of a materialised view says whether it read the stored members or ran the live query.
        source = {'data-stored="true"': "stored", 'data-stored="false"': "live"}
        source = next((v for k, v in source.items() if k in html), "")
        times = []
        for _ in range(args.repeat):
            started = time.perf_counter()
            client.get(url)
            times.append((time.perf_counter() - started) * 1000)
        p95 = percentile(times, 95)
        flag = "" if p95 <= 300 else "  over 300 ms"
        print(f"{name:<42} {first:9.0f} {statistics.median(times):8.0f} {p95:8.0f}  {source:<6}{flag}")
    print("\nlive queries of the disagreement views (what the list costs when a job ran since the refresh):")
    from annotation.models import Pair
    from review.selections import selections_in

    for view in selections_in("disagreement"):
        live = getattr(view.narrow, "live", view.narrow)
        started = time.perf_counter()
        n = live(Pair.objects.filter(dataset=dataset), dataset, dict(view.settings)).count()
        print(f"  {view.name:<22} {n:>9,} pairs {(time.perf_counter() - started) * 1000:9.0f} ms")
    print(f"load average at the end {os.getloadavg()[0]:.1f}")
    if not args.dataset and not args.keep:
        from ingest import drop_dataset

        with connection.cursor() as c:
            c.execute("DELETE FROM review_review WHERE pair_id IN "
                      "(SELECT id FROM annotation_pair WHERE dataset_id = %s)", [dataset.pk])
            c.execute("DELETE FROM annotation_rewardscore WHERE response_id IN "
                      "(SELECT id FROM annotation_response WHERE dataset_id = %s)", [dataset.pk])
            c.execute("DELETE FROM review_dashboardsnapshot WHERE dataset_id = %s", [dataset.pk])
            c.execute("DELETE FROM review_selectionmember WHERE dataset_id = %s", [dataset.pk])
            c.execute("DELETE FROM annotation_rewardmodel WHERE trained_on_id = %s", [dataset.pk])  # the bench's own model
        drop_dataset(dataset.pk)
    sys.exit(1 if failures else 0)


if __name__ == "__main__":
    main()
