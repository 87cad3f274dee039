"""Pair construction from judge scores: one workflow for the web form and `manage.py build_pairs`.

The core is pure: given the judges' scores of one prompt's responses and the parameters, it
returns the pairs (`panel_score`, `pairs_for_prompt`). The job around it walks the dataset's
prompts in keyset chunks; each chunk's pair writes and the job's progress commit together, so
an interrupted build resumes after the last committed chunk.

Rules, as in COIG-P:
- A response's panel score is the mean (or median) of the selected judges' scores; a response
  scored by fewer than `min_judges` of them has no panel score and takes no part.
- With `normalise="zscore"` each judge's score is first standardised with that judge's mean and
  (population) standard deviation over the selection, then mapped back onto the pooled mean and
  standard deviation of all selected scores. Judges that score generously or harshly count
  alike, and the threshold stays in rubric points (a judge with a single score value
  contributes the pooled mean).
- Panel scores are rounded to PANEL_DECIMALS places and the gap is rounded again, so "a gap
  equal to the threshold is not a pair" holds for 7.2 - 5.2 as it does for 7.0 - 5.0.
- A pair is formed when the gap is strictly greater than the threshold; chosen is the higher.
- For each (response, judge), the latest ok judgement counts (a rescore under a new rubric
  version replaces the old score).

A new build of a dataset updates its constructed pairs: pairs that still qualify are kept (scores
and build run updated, review status unchanged), new ones are added, ones that no longer qualify
are withdrawn (status "withdrawn", never deleted: reviews may point to them), and withdrawn ones
that qualify again come back as pending. Imported pairs are never touched. A build restricted to
some domains leaves the other domains' pairs alone.
"""

import math
import random
import statistics
from collections import defaultdict
from dataclasses import asdict, dataclass, field

from django.db import connection, transaction
from django.db.models.expressions import RawSQL
from django.utils import timezone
from django.utils.translation import gettext_lazy as _
from django.utils.translation import pgettext_lazy

from . import jobs
from .ingest.writer import lock_dataset_rows
from .jobs import JobCancelled, JobContext, JobFailed, job_kind
from .models import Dataset, Domain, Judge, Judgement, Pair, PairBuildRun
from .queries import latest_ok_judgements

AGGREGATES = ("mean", "median")
NORMALISATIONS = ("none", "zscore")
STRATEGIES = ("all", "random", "best-worst")
PANEL_DECIMALS = 6
DEFAULT_THRESHOLD = 2.0
# A panel of at least two judges by default (COIG-P used eight); min_judges=1 allows single-judge builds.
DEFAULT_MIN_JUDGES = 2
# Prompts per transaction: see BENCHMARKS.md ("Pair building"); at ~15 responses × 3-8 judges a
# prompt this is a few thousand judgement rows read and a few thousand pairs written per commit.
CHUNK_SIZE = 500
# Serialises chunk writes of concurrent builds of one dataset (first key of pg_advisory_xact_lock).
_LOCK_CLASS = 0x5041  # "PA"


# --- parameters -------------------------------------------------------------------------------


@dataclass(frozen=True)
class BuildParams:
    judges: tuple = ()  # judge names; empty means every judge with ok judgements in the dataset
    aggregate: str = "mean"
    normalise: str = "none"
    min_judges: int = DEFAULT_MIN_JUDGES
    threshold: float = DEFAULT_THRESHOLD
    strategy: str = "all"
    k: int = 1  # pairs per prompt for the random strategy
    seed: int = 0
    max_pairs_per_prompt: int | None = None
    domains: tuple = ()  # empty means every domain
    prompts: tuple = ()  # prompt ids; empty means every prompt (the pair page rebuilds one prompt)

    def __post_init__(self):
        _one_of("aggregate", self.aggregate, AGGREGATES)
        _one_of("normalise", self.normalise, NORMALISATIONS)
        _one_of("strategy", self.strategy, STRATEGIES)
        for name in ("min_judges", "k"):
            value = getattr(self, name)
            if not isinstance(value, int) or isinstance(value, bool) or value < 1:
                raise ValueError(f"{name} must be a whole number of at least 1, not {value!r}")
        if self.max_pairs_per_prompt is not None and (
            not isinstance(self.max_pairs_per_prompt, int) or self.max_pairs_per_prompt < 1
        ):
            raise ValueError(f"max_pairs_per_prompt must be at least 1 or empty, not {self.max_pairs_per_prompt!r}")
        if not isinstance(self.threshold, (int, float)) or not math.isfinite(self.threshold) or self.threshold < 0:
            raise ValueError(f"threshold must be a number of at least 0, not {self.threshold!r}")
        for domain in self.domains:
            _one_of("domain", domain, Domain.values)
        for prompt in self.prompts:
            if not isinstance(prompt, int) or isinstance(prompt, bool):
                raise ValueError(f"prompts must be prompt ids, not {prompt!r}")

    @classmethod
    def from_dict(cls, data):
        data = dict(data)
        unknown = data.keys() - cls.__dataclass_fields__.keys()
        if unknown:
            raise ValueError(f"unknown parameter(s): {', '.join(sorted(unknown))}")
        for name in ("judges", "domains", "prompts"):
            if name in data:
                data[name] = tuple(data[name] or ())
        if "threshold" in data:
            data["threshold"] = float(data["threshold"])
        return cls(**data)

    def to_dict(self):
        data = asdict(self)
        data["judges"], data["domains"] = list(self.judges), list(self.domains)
        data["prompts"] = list(self.prompts)
        return data


def _one_of(name, value, allowed):
    if value not in allowed:
        raise ValueError(f"{name} must be one of {', '.join(allowed)}, not {value!r}")


# --- the pure core ----------------------------------------------------------------------------


@dataclass(frozen=True)
class JudgeStats:
    """Per-judge mean and population standard deviation, and the same over all scores pooled."""

    mean: dict = field(default_factory=dict)
    std: dict = field(default_factory=dict)
    pooled_mean: float = 0.0
    pooled_std: float = 0.0

    def normalised(self, judge, score):
        sd = self.std[judge]
        z = 0.0 if sd == 0 else (score - self.mean[judge]) / sd
        return self.pooled_mean + self.pooled_std * z

    def to_dict(self):
        return {"mean": {str(j): m for j, m in self.mean.items()}, "std": {str(j): s for j, s in self.std.items()},
                "pooled_mean": self.pooled_mean, "pooled_std": self.pooled_std}

    @classmethod
    def from_dict(cls, data, key=int):
        return cls({key(j): m for j, m in data["mean"].items()}, {key(j): s for j, s in data["std"].items()},
                   data["pooled_mean"], data["pooled_std"])


def panel_score(scores, params, stats=None):
    """The panel score of one response from {judge: score} (the selected judges' scores only),
    or None when fewer than `params.min_judges` judges scored it."""
    if len(scores) < params.min_judges:
        return None
    if params.normalise == "zscore":
        values = [stats.normalised(judge, score) for judge, score in scores.items()]
    else:
        values = list(scores.values())
    value = statistics.median(values) if params.aggregate == "median" else math.fsum(values) / len(values)
    return round(value, PANEL_DECIMALS)


@dataclass(frozen=True)
class Candidate:
    chosen: object
    rejected: object
    chosen_score: float
    rejected_score: float

    @property
    def gap(self):
        return round(self.chosen_score - self.rejected_score, PANEL_DECIMALS)


def pairs_for_prompt(panel, params, prompt_key=0):
    """The pairs of one prompt from {response: panel score}.

    Deterministic: responses are ordered by key, ties in best-worst go to the smallest key, the
    per-prompt cap keeps the largest gaps, and the random strategy draws from a generator seeded
    with (seed, prompt_key), so the same inputs give the same pairs however the job is chunked."""
    threshold = round(float(params.threshold), PANEL_DECIMALS)
    items = sorted(panel.items(), key=lambda kv: kv[0])
    if params.strategy == "best-worst":
        if len(items) < 2:
            return []
        best = min(items, key=lambda kv: (-kv[1], kv[0]))
        worst = min(items, key=lambda kv: (kv[1], kv[0]))
        candidate = Candidate(best[0], worst[0], best[1], worst[1])
        return [candidate] if candidate.gap > threshold else []
    qualifying = []
    for i, (a, score_a) in enumerate(items):
        for b, score_b in items[i + 1:]:
            pair = Candidate(a, b, score_a, score_b) if score_a > score_b else Candidate(b, a, score_b, score_a)
            if pair.gap > threshold:
                qualifying.append(pair)
    limit = params.max_pairs_per_prompt
    if params.strategy == "random":
        limit = min(params.k, limit or params.k)
        rng = random.Random(f"{params.seed}:{prompt_key}")
        picked = rng.sample(qualifying, min(limit, len(qualifying)))
        return sorted(picked, key=_by_gap)
    qualifying.sort(key=_by_gap)
    return qualifying[:limit] if limit else qualifying


def _by_gap(c):
    return (-c.gap, c.chosen, c.rejected)


# --- starting a build -------------------------------------------------------------------------


class BuildAlreadyRunning(Exception):
    def __init__(self, job):
        self.job = job
        super().__init__(f"a pair build of this dataset is already under way (job {job.pk})")


def start_build(dataset, params, *, user=None, enqueue=True, chunk_size=None):
    """Create the build_pairs job, enqueued for a worker on commit (or not, for a caller that runs
    it in its own process); refuses while another build of the dataset is under way."""
    job_params = params.to_dict() | ({"chunk_size": chunk_size} if chunk_size else {})
    with transaction.atomic():
        Dataset.objects.select_for_update().filter(pk=dataset.pk).first()
        running = jobs.running_job(dataset, "build_pairs")
        if running:
            raise BuildAlreadyRunning(running)
        return jobs.create_job("build_pairs", dataset=dataset, user=user, params=job_params, enqueue_it=enqueue)


def scored_judges(dataset):
    """Judges with at least one ok judgement in the dataset. A LATERAL … LIMIT 1 per judge stops at its
    first such judgement; PostgreSQL turns the same EXISTS into a semi-join that reads every judgement
    of the dataset (1.6 s at 1M pairs and four judges, against 0.2 ms; measured)."""
    first_ok = RawSQL(
        """SELECT g.id FROM annotation_judge g CROSS JOIN LATERAL (
               SELECT 1 FROM annotation_judgement j JOIN annotation_response r ON r.id = j.response_id
               WHERE j.judge_id = g.id AND j.status = %s AND r.dataset_id = %s LIMIT 1) AS first_ok""",
        [Judgement.Status.OK, dataset.pk])
    return Judge.objects.filter(pk__in=first_ok).order_by("name")


# --- the job ----------------------------------------------------------------------------------


# What a build counts (its job's counts and its PairBuildRun's), with their labels on the job page.
BUILD_COUNTS = {
    "prompts_considered": _("Prompts considered"),
    "prompts_without_pairs": _("Prompts without a pair"),
    "pairs_created": _("Pairs created"),
    "pairs_updated": _("Pairs updated"),
    "pairs_withdrawn": _("Pairs withdrawn"),
    "pairs_restored": _("Pairs restored"),
    "pairs_same_as_imported": _("Pairs the same as an imported one"),
    "responses_below_min_judges": _("Responses with too few judges"),
    "pairs_in_run": _("Pairs in this run"),
}
COUNT_KEYS = tuple(BUILD_COUNTS)


@job_kind("build_pairs", label=pgettext_lazy("job kind", "pair building"), unit="prompts", counts=BUILD_COUNTS)
def run_build_pairs(ctx: JobContext):
    dataset = Dataset.objects.get(pk=ctx.job.dataset_id)
    try:
        params = BuildParams.from_dict({k: v for k, v in ctx.params.items() if k != "chunk_size"})
    except (TypeError, ValueError) as exc:
        raise JobFailed(f"bad parameters: {exc}") from None
    chunk_size = ctx.params.get("chunk_size", CHUNK_SIZE)
    if "run" not in ctx.cursor:
        _begin(ctx, dataset, params)
    state = ctx.cursor
    run = PairBuildRun.objects.get(pk=state["run"])
    judge_ids = state["judge_ids"]
    stats = JudgeStats.from_dict(state["stats"]) if params.normalise == "zscore" else None
    try:
        while True:
            prompt_ids = _prompt_ids(dataset, params, judge_ids, after=state["after"], limit=chunk_size)
            if not prompt_ids:
                break
            with transaction.atomic():
                counts = build_chunk(dataset, run, prompt_ids, params, judge_ids, stats)
                ctx.commit(done=len(prompt_ids), counts=counts, cursor={**state, "after": prompt_ids[-1]})
            state = ctx.cursor
    except JobCancelled:
        # The chunks before the cancel stay committed: the run records what they changed.
        PairBuildRun.objects.filter(pk=run.pk).update(counts=_run_counts(ctx.counts))
        raise
    PairBuildRun.objects.filter(pk=run.pk).update(counts=_run_counts(ctx.counts), finished_at=timezone.now())


def _begin(ctx, dataset, params):
    """Resolve the judges and the normalisation statistics once, record them on a new run, and
    commit them in the cursor so that a resumed job goes on with exactly the same ones."""
    available = {j.name: j.pk for j in scored_judges(dataset)}
    if params.judges:
        missing = [name for name in params.judges if name not in available]
        if missing:
            raise JobFailed(
                f"no ok judgements in {dataset.name} from judge(s) {', '.join(missing)}; "
                f"judges with scores: {', '.join(available) or 'none'}"
            )
        names = list(params.judges)
    else:
        names = sorted(available)
    if not names:
        raise JobFailed(f"{dataset.name} has no ok judgements to build pairs from")
    if params.min_judges > len(names):
        raise JobFailed(
            f"min_judges is {params.min_judges} but only {len(names)} judge(s) are selected ({', '.join(names)}); "
            "lower min_judges (1 builds pairs from a single judge)"
        )
    judge_ids = [available[name] for name in names]
    stats = _judge_stats(dataset, params, judge_ids) if params.normalise == "zscore" else None
    ctx.set_total(_count_prompts(dataset, params, judge_ids))
    recorded = {**params.to_dict(), "judges": names, "judge_ids": judge_ids}
    if stats:
        by_name = dict(zip(judge_ids, names))
        recorded["judge_stats"] = {
            by_name[j]: {"mean": stats.mean[j], "std": stats.std[j]} for j in judge_ids if j in stats.mean
        }
        recorded["pooled"] = {"mean": stats.pooled_mean, "std": stats.pooled_std}
    with transaction.atomic():
        run = PairBuildRun.objects.create(dataset=dataset, params=recorded, job_id=ctx.job.pk)
        ctx.commit(cursor={"run": run.pk, "after": 0, "judge_ids": judge_ids,
                           "stats": stats.to_dict() if stats else None})


def _run_counts(counts):
    return {**{key: counts.get(key, 0) for key in COUNT_KEYS}, "by_domain": counts.get("by_domain", {})}


def _latest_ok(where):
    """(prompt, response, judge, score) of the latest ok judgements by the selected judges."""
    return latest_ok_judgements(f"{where} AND j.judge_id = ANY(%(judges)s)",
                                columns="r.prompt_id, j.response_id, j.judge_id, j.score")

# Prompts a build visits: those with ok judgements from the selected judges, and those with
# constructed pairs still standing (which must be withdrawn if their judgements went away).
_PROMPTS = """
    SELECT {select} FROM annotation_prompt p
    WHERE p.dataset_id = %(dataset)s {domain_filter} {prompt_filter} {after_filter}
      AND (EXISTS (SELECT 1 FROM annotation_response r JOIN annotation_judgement j ON j.response_id = r.id
                   WHERE r.prompt_id = p.id AND j.status = 'ok' AND j.judge_id = ANY(%(judges)s))
           OR EXISTS (SELECT 1 FROM annotation_pair x
                      WHERE x.prompt_id = p.id AND x.origin = 'constructed' AND x.status <> 'withdrawn'))
    {tail}
"""


def _prompts_sql(params, select, after=False, tail=""):
    return _PROMPTS.format(
        select=select,
        domain_filter="AND p.domain = ANY(%(domains)s)" if params.domains else "",
        prompt_filter="AND p.id = ANY(%(prompts)s)" if params.prompts else "",
        after_filter="AND p.id > %(after)s" if after else "",
        tail=tail,
    )


def _count_prompts(dataset, params, judge_ids):
    with connection.cursor() as cursor:
        cursor.execute(_prompts_sql(params, "count(*)"),
                       {"dataset": dataset.pk, "domains": list(params.domains), "judges": judge_ids,
                        "prompts": list(params.prompts)})
        return cursor.fetchone()[0]


def _prompt_ids(dataset, params, judge_ids, after, limit):
    with connection.cursor() as cursor:
        cursor.execute(
            _prompts_sql(params, "p.id", after=True, tail="ORDER BY p.id LIMIT %(limit)s"),
            {"dataset": dataset.pk, "domains": list(params.domains), "judges": judge_ids, "after": after,
             "limit": limit, "prompts": list(params.prompts)},
        )
        return [row[0] for row in cursor.fetchall()]


def _judge_stats(dataset, params, judge_ids):
    where = "r.dataset_id = %(dataset)s"
    if params.domains:
        where += " AND r.prompt_id IN (SELECT id FROM annotation_prompt WHERE dataset_id = %(dataset)s"
        where += " AND domain = ANY(%(domains)s))"
    sql = f"""
        WITH latest AS ({_latest_ok(where)})
        SELECT judge_id, avg(score), stddev_pop(score), count(*) FROM latest GROUP BY judge_id
        UNION ALL SELECT NULL, avg(score), stddev_pop(score), count(*) FROM latest
    """
    with connection.cursor() as cursor:
        cursor.execute(sql, {"dataset": dataset.pk, "domains": list(params.domains), "judges": judge_ids})
        rows = cursor.fetchall()
    pooled = next(row for row in rows if row[0] is None)
    per_judge = [row for row in rows if row[0] is not None]
    return JudgeStats({r[0]: r[1] for r in per_judge}, {r[0]: r[2] for r in per_judge},
                      pooled[1] or 0.0, pooled[2] or 0.0)


def build_chunk(dataset, run, prompt_ids, params, judge_ids, stats):
    """Rebuild the constructed pairs of `prompt_ids`; returns the chunk's counts. Call inside a transaction."""
    with connection.cursor() as cursor:
        cursor.execute("SELECT pg_advisory_xact_lock(%s, %s)", [_LOCK_CLASS, dataset.pk])
        cursor.execute(_latest_ok("r.prompt_id = ANY(%(prompts)s)"),
                       {"prompts": prompt_ids, "judges": judge_ids})
        scores = defaultdict(lambda: defaultdict(dict))
        for prompt_id, response_id, judge_id, score in cursor.fetchall():
            scores[prompt_id][response_id][judge_id] = score

    counts = dict.fromkeys(COUNT_KEYS, 0)
    wanted = {}  # (prompt, chosen, rejected) -> (chosen score, rejected score)
    for prompt_id, responses in scores.items():
        panel = {}
        for response_id, by_judge in responses.items():
            value = panel_score(by_judge, params, stats)
            if value is None:
                counts["responses_below_min_judges"] += 1
            else:
                panel[response_id] = value
        if len(panel) < 2:
            continue
        counts["prompts_considered"] += 1
        candidates = pairs_for_prompt(panel, params, prompt_key=prompt_id)
        if not candidates:
            counts["prompts_without_pairs"] += 1
        for c in candidates:
            wanted[(prompt_id, c.chosen, c.rejected)] = (c.chosen_score, c.rejected_score)

    existing = Pair.objects.filter(prompt_id__in=prompt_ids, origin=Pair.Origin.CONSTRUCTED).values_list(
        "pk", "prompt_id", "chosen_id", "rejected_id", "status"
    )
    refresh, withdraw = [], []
    for pk, prompt_id, chosen_id, rejected_id, status in existing:
        key = (prompt_id, chosen_id, rejected_id)
        if key in wanted:
            refresh.append((pk, *wanted.pop(key)))
            counts["pairs_restored" if status == Pair.Status.WITHDRAWN else "pairs_updated"] += 1
        elif status != Pair.Status.WITHDRAWN:
            withdraw.append(pk)
    counts["pairs_withdrawn"] += len(withdraw)

    with connection.cursor() as cursor:
        if refresh:
            ids, chosen_scores, rejected_scores = (list(col) for col in zip(*refresh))
            cursor.execute(
                """UPDATE annotation_pair p SET chosen_score = u.cs, rejected_score = u.rs, build_run_id = %(run)s,
                          status = CASE WHEN p.status = 'withdrawn' THEN 'pending' ELSE p.status END,
                          status_reason = CASE WHEN p.status = 'withdrawn' THEN '' ELSE p.status_reason END
                   FROM unnest(%(ids)s::bigint[], %(cs)s::float8[], %(rs)s::float8[]) AS u(id, cs, rs)
                   WHERE p.id = u.id""",
                {"run": run.pk, "ids": ids, "cs": chosen_scores, "rs": rejected_scores},
            )
        if withdraw:
            cursor.execute(
                "UPDATE annotation_pair SET status = 'withdrawn', status_reason = %s WHERE id = ANY(%s)",
                [f"withdrawn by build run {run.pk}", withdraw],
            )
        by_domain = defaultdict(int)
        if wanted:
            keys = list(wanted)
            lock_dataset_rows(cursor, dataset.pk)  # an import's batch COPYs pairs it has looked up as new
            cursor.execute(
                """INSERT INTO annotation_pair (dataset_id, prompt_id, domain, chosen_id, rejected_id, origin,
                                                build_run_id, chosen_score, rejected_score, status, status_reason,
                                                created_at)
                   SELECT %(dataset)s, u.p, pr.domain, u.c, u.r, 'constructed', %(run)s, u.cs, u.rs, 'pending', '',
                          %(now)s
                   FROM unnest(%(p)s::bigint[], %(c)s::bigint[], %(r)s::bigint[], %(cs)s::float8[], %(rs)s::float8[])
                        AS u(p, c, r, cs, rs)
                   JOIN annotation_prompt pr ON pr.id = u.p
                   ON CONFLICT (prompt_id, chosen_id, rejected_id) DO NOTHING
                   RETURNING domain""",
                {"dataset": dataset.pk, "run": run.pk, "now": timezone.now(),
                 "p": [k[0] for k in keys], "c": [k[1] for k in keys], "r": [k[2] for k in keys],
                 "cs": [wanted[k][0] for k in keys], "rs": [wanted[k][1] for k in keys]},
            )
            for (domain,) in cursor.fetchall():
                by_domain[domain] += 1
        created = sum(by_domain.values())
        # The only conflict left is with an imported pair of the same responses, which stays as it is.
        counts["pairs_same_as_imported"] += len(wanted) - created
    counts["pairs_created"] += created
    counts["pairs_in_run"] += created + counts["pairs_updated"] + counts["pairs_restored"]
    return {**counts, "by_domain": dict(by_domain)}
