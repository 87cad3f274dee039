"""Dashboards of a dataset: the overview and the disagreement counts, and the snapshots that keep
them fast.

Every number here is the size of a list that the pair list can show (review/selections.py): the
pages link each one to `pair-list` with the parameters that select it, and tests follow the links.

Aggregating a million pairs (and several million judgements) takes seconds, far over what a page
may take, so each dashboard's data is a `DashboardSnapshot`: computed by the `dashboard_refresh`
job (started by beat once a job of the dataset has finished, `review.tasks.refresh_stale_dashboards`,
or by the admins' button on each page; the first visit computes it in the request), stored as JSON, and shown
with its age. A snapshot is *stale* when a job of the dataset finished, or a review was saved,
after it was computed; the page then says so (the numbers may differ from the lists behind them).

The judge-based disagreement views are as costly to list as to count, so the refresh also stores
their members (SelectionMember); the pair list reads those while no job of the dataset has changed
its data since the refresh, and the live query otherwise (review/members.py).
"""

import time

from django.db import connection, transaction
from django.db.models import Count, Min, Q
from django.utils import timezone
from django.utils.translation import gettext_lazy as _
from django.utils.translation import pgettext_lazy

from annotation.jobs import create_job, job_kind, jobs_under_way, read_only_kinds, running_job
from annotation.models import Domain, Job, Pair

from .disagreements import LATEST_SCORES, reward_model_for
from .judge_analysis import judges_data
from . import members
from .models import DashboardSnapshot, DecisionBatch, Review
from .selections import selections_in

REFRESH_KIND = "dashboard_refresh"
# Chart buckets are powers of two wide, so that a bucket's bounds are exact in binary floating point
# and "lo ≤ x < hi" in the pair list selects exactly the pairs counted in the bar.
BUCKET_WIDTHS = [2.0 ** k for k in range(-6, 8)]


# --- snapshots -----------------------------------------------------------------------------------


# Above this many pairs a missing snapshot is left to a refresh job rather than computed in the request:
# at 100k pairs one dashboard took 2-3 s on the shared 2-core machine (BENCHMARKS.md, "Dashboards").
INLINE_MAX_PAIRS = 200_000


def snapshot(dataset, name):
    """The stored snapshot `name` of the dataset, computed now if there is none and the dataset is small;
    None for a large dataset without one (the caller starts a refresh job)."""
    found = DashboardSnapshot.objects.filter(dataset=dataset, name=name).first()
    if found is not None:
        return found
    if Pair.objects.filter(dataset=dataset).count() > INLINE_MAX_PAIRS:
        return None
    return refresh_one(dataset, name)


def refresh_one(dataset, name):
    # One transaction: readers see the old snapshot (and stored members) or the new, never a mix. The
    # snapshot is dated when its computation began, so a job finishing meanwhile makes it stale.
    computed_at, started = timezone.now(), time.perf_counter()
    with transaction.atomic():
        data = COMPUTE[name](dataset)
        snap, _created = DashboardSnapshot.objects.update_or_create(
            dataset=dataset, name=name,
            defaults={"data": data, "computed_at": computed_at, "seconds": time.perf_counter() - started})
    return snap


def freshness(dataset, snap, reviews_live=False):
    """What the page says about a snapshot's age: when, how long it took, and whether data changed since
    (reviews do not count for a page that counts them live)."""
    # Only what changed after the snapshot is looked at (review_updated: the reviews saved since), never
    # all of a large dataset's reviews.
    since = snap.computed_at
    changed = (Job.objects.filter(dataset=dataset, finished_at__gt=since).exclude(kind__in=read_only_kinds())
               .exists() or decided_since(dataset, since) or (not reviews_live and
                             Review.objects.filter(updated_at__gt=since, dataset=dataset).exists()))
    running = running_job(dataset, REFRESH_KIND)
    return {"computed_at": snap.computed_at, "age": timezone.now() - snap.computed_at, "seconds": snap.seconds,
            "stale": changed, "refresh_job": running}


@job_kind(REFRESH_KIND, label=pgettext_lazy("job kind", "dashboard refresh"), unit="dashboards",
          changes_data=False, counts={"seconds": _("Seconds computing")})
def run_refresh(ctx):
    """Recompute every dashboard of the job's dataset; each one commits on its own."""
    names = list(COMPUTE)
    ctx.set_total(len(names))
    for name in names:
        with transaction.atomic():
            snap = refresh_one(ctx.job.dataset, name)
            ctx.commit(done=1, counts={"seconds": round(snap.seconds, 3)})


def needs_refresh(dataset):
    """No job of the dataset is under way now, and either a job finished after its oldest snapshot was
    computed, or it has no snapshot yet but a job has filled it (an import) and no refresh was ever tried
    (a failed one is left to the admins' button rather than retried every minute)."""
    oldest = DashboardSnapshot.objects.filter(dataset=dataset).aggregate(at=Min("computed_at"))["at"]
    if jobs_under_way(dataset).exists():
        return False
    jobs = Job.objects.filter(dataset=dataset)
    changed = jobs.exclude(kind__in=read_only_kinds()).filter(status__in=Job.COMPLETED)
    if oldest is None:
        return changed.exists() and not jobs.filter(kind=REFRESH_KIND).exists()
    return jobs.exclude(kind__in=read_only_kinds()).filter(finished_at__gt=oldest).exists() \
        or decided_since(dataset, oldest)


def decided_since(dataset, at):
    """A decision (review/decisions.py) changed pair statuses after `at` (made, undone, or its job finished since
    or still under way): the counts by status are stale. No stored list reads statuses, so an inline decision
    leaves those current (a decision job counts as a job that changed data, like any other)."""
    return DecisionBatch.objects.filter(Q(at__gt=at) | Q(undone_at__gt=at) | Q(job__finished_at__gt=at)
                                        | Q(job__isnull=False, job__finished_at__isnull=True), dataset=dataset).exists()


def start_refresh(dataset, user=None):
    """A refresh job for the dataset, unless one is already waiting or running."""
    return running_job(dataset, REFRESH_KIND) or create_job(REFRESH_KIND, dataset=dataset, user=user)


# --- the overview --------------------------------------------------------------------------------


def _rows(sql, params):
    with connection.cursor() as cursor:
        cursor.execute(sql, params)
        return cursor.fetchall()


def overview_data(dataset):
    ds = dataset.pk
    by_domain_status = _rows(
        "SELECT domain, status, count(*) FROM annotation_pair WHERE dataset_id = %s GROUP BY 1, 2", [ds])
    counts = review_counts(dataset)
    reviewed = {domain: pairs for domain, (pairs, _reviews, _accepted) in counts.items()}
    # The reason a pair was filtered, without the per-pair details ("margin=…", "was=…").
    reasons = _rows(
        r"""SELECT regexp_replace(status_reason, '\s+(margin|was|batch)=.*$', ''), count(*) FROM annotation_pair
            WHERE dataset_id = %s AND status = 'filtered' GROUP BY 1 ORDER BY 2 DESC, 1""", [ds])
    domains = {}
    for domain, status, n in by_domain_status:
        row = domains.setdefault(domain, {"domain": domain, "total": 0, "reviewed": reviewed.get(domain, 0)})
        row[status] = n
        row["total"] += n
    rows = [domains[d] for d in Domain.values if d in domains]
    for row in rows:
        for status in Pair.Status.values:
            row.setdefault(status, 0)
    total = {key: sum(r[key] for r in rows) for key in ["total", "reviewed", *Pair.Status.values]}
    return {
        "domains": rows, "total": total,
        # The dataset page's counts (review/views.py dataset_counts) come from here on a large dataset.
        "prompts_by_domain": dict(_rows(
            "SELECT domain, count(*) FROM annotation_prompt WHERE dataset_id = %s GROUP BY 1", [ds])),
        "responses_by_domain": dict(_rows(
            """SELECT q.domain, count(*) FROM annotation_response r JOIN annotation_prompt q ON q.id = r.prompt_id
               WHERE r.dataset_id = %s GROUP BY 1""", [ds])),
        "reasons": [{"reason": r, "n": n} for r, n in reasons],
        "coverage": judge_coverage(dataset),
        "score_hist": score_histograms(dataset),
        "gap_hist": histogram(_rows(
            """SELECT chosen_score - rejected_score FROM annotation_pair WHERE dataset_id = %s
               AND chosen_score IS NOT NULL AND rejected_score IS NOT NULL""", [ds])),
        **reward_overview(dataset),
        "acceptance": acceptance_by_domain(dataset, counts),
    }


def review_counts(dataset):
    """{domain: (pairs with a review, reviews, reviews that accept the pair)} in one pass over the reviews.
    The overview reads this live on every visit (one query where the snapshot-freshness check on reviews
    used to be), and the snapshot computes its review numbers from it too."""
    rows = (Review.objects.filter(dataset=dataset).order_by().values_list("domain")
            .annotate(pairs=Count("pair_id", distinct=True), reviews=Count("pk"),
                      accepted=Count("pk", filter=Review.ACCEPTS)))
    return {domain: (pairs, reviews, accepted) for domain, pairs, reviews, accepted in rows}


def with_live_reviews(dataset, data):
    """The overview's snapshot with its review numbers (progress, acceptance) counted now: reviewers see
    their work on it at once, and a review no longer makes the overview stale."""
    counts = review_counts(dataset)
    for row in data["domains"]:
        row["reviewed"] = counts.get(row["domain"], (0,))[0]
    data["total"]["reviewed"] = sum(row["reviewed"] for row in data["domains"])
    data["acceptance"] = acceptance_by_domain(dataset, counts)
    return data


def judge_coverage(dataset):
    """Per judge: responses with an ok judgement, and judgements that failed, of the dataset's responses."""
    (responses,), = _rows("SELECT count(*) FROM annotation_response WHERE dataset_id = %s", [dataset.pk])
    rows = _rows(
        """SELECT g.id, g.name, count(DISTINCT j.response_id) FILTER (WHERE j.status = 'ok'),
                  count(*) FILTER (WHERE j.status = 'parse_error'), count(*) FILTER (WHERE j.status = 'refused'),
                  count(*) FILTER (WHERE j.status = 'error')
           FROM annotation_judgement j JOIN annotation_response r ON r.id = j.response_id
           JOIN annotation_judge g ON g.id = j.judge_id
           WHERE r.dataset_id = %s GROUP BY g.id, g.name ORDER BY g.name""", [dataset.pk])
    return {"responses": responses, "judges": [
        {"id": i, "name": name, "scored": ok, "share": ok / responses if responses else 0.0,
         "parse_error": pe, "refused": refused, "error": err} for i, name, ok, pe, refused, err in rows]}


def score_histograms(dataset):
    """Per judge, how many of its latest ok scores fall in [k, k + 1) for k = 1 … 10 (10 alone in the last)."""
    rows = _rows(
        f"""WITH latest AS ({LATEST_SCORES})
            SELECT g.name, least(floor(l.score), 10)::int, count(*) FROM latest l
            JOIN annotation_judge g ON g.id = l.judge_id GROUP BY 1, 2 ORDER BY 1, 2""", [dataset.pk])
    out = {}
    for name, bucket, n in rows:
        out.setdefault(name, [0] * 10)[bucket - 1] = n
    return [{"judge": name, "counts": counts} for name, counts in out.items()]


def histogram(values, target_buckets=24):
    """Buckets [lo, hi) of a power-of-two width chosen for about `target_buckets` bars, from [(x,), …]."""
    xs = [v for (v,) in values]
    if not xs:
        return {"buckets": [], "width": None}
    lo, hi = min(xs), max(xs)
    width = next((w for w in BUCKET_WIDTHS if (hi - lo) / w <= target_buckets), BUCKET_WIDTHS[-1])
    counts = {}
    for x in xs:
        k = int(x // width)
        counts[k] = counts.get(k, 0) + 1
    first, last = min(counts), max(counts)
    return {"width": width, "buckets": [
        {"lo": k * width, "hi": (k + 1) * width, "n": counts.get(k, 0)} for k in range(first, last + 1)]}


def reward_overview(dataset):
    """The reward-margin histogram and, per domain, how often the reward model agrees with the panel."""
    model = reward_model_for(dataset)
    if model is None:
        return {"reward_model": None, "margin_hist": histogram([]), "crm_agreement": []}
    base = """FROM annotation_pair q
              JOIN annotation_rewardscore sc ON sc.response_id = q.chosen_id AND sc.reward_model_id = %s
              JOIN annotation_rewardscore sr ON sr.response_id = q.rejected_id AND sr.reward_model_id = %s
              WHERE q.dataset_id = %s"""
    params = [model.pk, model.pk, dataset.pk]
    margins = _rows(f"SELECT sc.reward - sr.reward {base}", params)
    agreement = _rows(
        f"""SELECT q.domain, count(*),
                   count(*) FILTER (WHERE sign(sc.reward - sr.reward) <> sign(q.chosen_score - q.rejected_score))
            {base} AND q.chosen_score IS NOT NULL AND q.rejected_score IS NOT NULL GROUP BY 1""", params)
    by_domain = {d: (n, disagree) for d, n, disagree in agreement}
    return {
        "reward_model": {"id": model.pk, "name": str(model)},
        "margin_hist": histogram(margins),
        "crm_agreement": [
            {"domain": d, "pairs": by_domain[d][0], "disagree": by_domain[d][1],
             "agree_share": 1 - by_domain[d][1] / by_domain[d][0]}
            for d in Domain.values if d in by_domain],
    }


def acceptance_by_domain(dataset, counts=None):
    """The paper's human check from our reviews: per domain, the share of reviews that accept the pair
    (find the chosen response better and mark it correct, Review.ACCEPTS)."""
    counts = review_counts(dataset) if counts is None else counts
    return [{"domain": d, "reviews": counts[d][1], "accepted": counts[d][2], "rate": counts[d][2] / counts[d][1]}
            for d in Domain.values if d in counts]


# --- disagreements -------------------------------------------------------------------------------


def disagreement_data(dataset):
    """Per disagreement view (default settings) and domain, how many pairs it selects. The costly
    views' members are stored too (review/members.py), so the list behind a count is as fast as the count."""
    views = []
    for view in selections_in("disagreement"):
        live = getattr(view.narrow, "live", None)
        pairs = (live or view.narrow)(Pair.objects.filter(dataset=dataset), dataset, dict(view.settings))
        if live is not None:
            members.store(dataset, view, pairs)
            pairs = members.stored(dataset, view)
        counts = dict(pairs.order_by().values_list("domain").annotate(n=Count("*")))
        views.append({"name": view.name, "counts": counts, "total": sum(counts.values())})
    return {"views": views, "materialised": True}


COMPUTE = {"overview": overview_data, "disagreements": disagreement_data, "judges": judges_data}
