"""Reward filtering: one workflow for the web buttons and `manage.py reward_filter`.

A `reward_filter` job does one of three things (`mode`):
- score: give every response of the eligible pairs a RewardScore from the model (missing ones only);
- apply: score, then mark eligible pairs whose margin r(chosen) − r(rejected) is at or below the
  threshold as filtered, with status_reason "reward:<name> v<version> margin=<m> was=<old status>",
  and put back pairs this model filtered earlier whose margin is now above it (a new threshold);
- unfilter: put every pair this model filtered back to the status (and reason) it had; the pair page's
  unfilter puts one pair back the same way (`unfilter_pair`).
Eligible pairs are pending, kept, or filtered by this same model: another rule's filtered pairs are
never touched. Scores go in with ON CONFLICT DO NOTHING and pairs are updated by keyset chunks, each
chunk committed with the job's cursor, so a re-run or a taken-over job neither repeats nor loses work.
"""

import numpy as np
import orjson
from django.db import connection, transaction
from django.utils.translation import gettext as _
from django.utils.translation import gettext_lazy, pgettext_lazy

from ..jobs import JobContext, JobFailed, job_kind
from ..models import Dataset, Domain, Pair, RewardModel
from .builtin import load_for

MODES = ("score", "apply", "unfilter")
# 5,000 responses a chunk: ~2 MB of text, featurised and scored in well under a second.
SCORE_CHUNK = 5000
# While a neural model scores a chunk, the job's lease is renewed (and a cancel looked for) this often.
HEARTBEAT_S = 5.0
# 20,000 pairs a chunk: one UPDATE … FROM join over them commits in a fraction of a second.
PAIR_CHUNK = 20_000


def filter_params(reward_model, *, mode="apply", threshold=0.0):
    if mode not in MODES:
        raise ValueError(f"unknown mode {mode!r}; expected one of {', '.join(MODES)}")
    threshold = float(threshold)
    if not np.isfinite(threshold):
        raise ValueError("the threshold must be a finite number")
    return {"reward_model": reward_model.pk, "mode": mode, "threshold": threshold}


def _eligible_sql(alias="q"):
    return (f"({alias}.status IN ('pending', 'kept') OR ({alias}.status = 'filtered' "
            f"AND left({alias}.status_reason, %(taglen)s) = %(tag)s))")


def _sql_params(dataset, reward_model, **extra):
    tag = reward_model.tag() + " "
    return {"dataset": dataset.pk, "model": reward_model.pk, "tag": tag, "taglen": len(tag), **extra}


def responses_to_score(dataset, reward_model, after=0):
    """Ids of the responses of eligible pairs that have no reward from this model yet, ascending."""
    with connection.cursor() as cursor:
        cursor.execute(
            f"""SELECT t.id FROM (
                    SELECT q.chosen_id AS id FROM annotation_pair q
                    WHERE q.dataset_id = %(dataset)s AND {_eligible_sql()}
                    UNION
                    SELECT q.rejected_id FROM annotation_pair q
                    WHERE q.dataset_id = %(dataset)s AND {_eligible_sql()}
                ) t
                WHERE t.id > %(after)s AND NOT EXISTS (
                    SELECT 1 FROM annotation_rewardscore s WHERE s.response_id = t.id AND s.reward_model_id = %(model)s)
                ORDER BY t.id""",
            _sql_params(dataset, reward_model, after=after),
        )
        # Row by row into 8 bytes an id: a list of a million tuples would take ~100 MB more.
        return np.fromiter((row[0] for row in cursor), dtype=np.int64)


def score_responses(reward_model, ids, heartbeat=None):
    """Rewards of the responses `ids` from the model's backend: (response ids found, rewards). Runs outside
    the chunk's transaction, so that `heartbeat()` (called between batches) can renew the job's lease."""
    with connection.cursor() as cursor:
        cursor.execute(
            """SELECT r.id, r.text, length(p.query), p.domain, p.messages FROM annotation_response r
               JOIN annotation_prompt p ON p.id = r.prompt_id WHERE r.id = ANY(%s) ORDER BY r.id""",
            [ids.tolist()],
        )
        rows = cursor.fetchall()
    if not rows:
        return [], np.zeros(0)
    return [row[0] for row in rows], score_rows(reward_model, rows, heartbeat)


def store_rewards(reward_model, found, rewards):
    """Insert the rewards (a re-run or a taken-over job adds nothing twice); returns how many were added."""
    if not found:
        return 0
    with connection.cursor() as cursor:
        cursor.execute(
            """INSERT INTO annotation_rewardscore (response_id, reward_model_id, reward, created_at)
               SELECT unnest(%s::bigint[]), %s, unnest(%s::double precision[]), now()
               ON CONFLICT (response_id, reward_model_id) DO NOTHING""",
            [list(found), reward_model.pk, rewards.tolist()],
        )
        return cursor.rowcount


def score_rows(reward_model, rows, heartbeat=None):
    """Rewards of (response id, text, prompt length, domain, prompt messages) rows, by the model's backend."""
    found, texts, prompt_lengths, domains, prompts = zip(*rows)
    backend = reward_model.backend
    if backend == RewardModel.Backend.BUILTIN:
        return load_for(reward_model).score(list(texts), np.array(prompt_lengths, dtype=np.float64), domains)
    conversations = [[*(orjson.loads(m) if isinstance(m, str) else m), {"role": "assistant", "content": t}]
                     for m, t in zip(prompts, texts)]
    if backend == RewardModel.Backend.HF:
        from . import hf

        try:
            return hf.load_for(reward_model).score(conversations, on_batch=heartbeat)
        except hf.HFUnavailable as exc:
            raise JobFailed(f"{reward_model}: {exc}") from None
    if backend == RewardModel.Backend.HTTP:
        from . import http

        try:
            return http.score_all(reward_model, [(f"response {rid}", c) for rid, c in zip(found, conversations)])
        except http.RewardError as exc:
            raise JobFailed(str(exc)) from None
    raise JobFailed(f"{reward_model}: unknown backend {backend!r}")


def score_chunk_size(reward_model):
    """Responses scored and committed together: the built-in model does 5,000 in well under a second;
    a neural model or an endpoint is far slower per response, and a chunk must finish well within the
    job's lease (JOB_LEASE_SECONDS) or another worker would take the job over."""
    default = SCORE_CHUNK if reward_model.backend == RewardModel.Backend.BUILTIN else 256
    return int(reward_model.config.get("chunk_size") or default)


_MARGINS = """
    SELECT q.id, q.domain, q.status, sc.reward - sr.reward AS margin
    FROM annotation_pair q
    JOIN annotation_rewardscore sc ON sc.response_id = q.chosen_id AND sc.reward_model_id = %(model)s
    JOIN annotation_rewardscore sr ON sr.response_id = q.rejected_id AND sr.reward_model_id = %(model)s
    WHERE q.dataset_id = %(dataset)s AND q.id > %(lo)s AND q.id <= %(hi)s AND {eligible}
"""

# A filtered pair's reason keeps what it replaced: "<tag> margin=<m> [reason=<earlier reason>] was=<status>",
# the earlier reason cut to fit the column (200 characters), so unfiltering restores both.
_PREFIX = "%(tag)s || 'margin=' || round(m.margin::numeric, 4)::text"
_REASON = (f"CASE WHEN q.status_reason = '' THEN {_PREFIX} || ' was=' || m.status "
           f"ELSE {_PREFIX} || ' reason=' || left(q.status_reason, greatest(0, 200 - length({_PREFIX}) - 8 "
           f"- length(' was=' || m.status))) || ' was=' || m.status END")
_RESTORE = ("status = CASE WHEN q.status_reason LIKE '%% was=kept' THEN 'kept' ELSE 'pending' END, "
            "status_reason = coalesce(substring(q.status_reason from ' margin=\\S+ reason=(.*) was=\\w+$'), '')")

_APPLY = f"""
WITH m AS ({_MARGINS.format(eligible=_eligible_sql())}),
filtered AS (
    UPDATE annotation_pair q
    SET status = 'filtered',
        status_reason = {_REASON}
    FROM m WHERE q.id = m.id AND m.margin <= %(threshold)s AND m.status <> 'filtered'
    RETURNING q.id
),
restored AS (
    UPDATE annotation_pair q
    SET {_RESTORE}
    FROM m WHERE q.id = m.id AND m.margin > %(threshold)s AND m.status = 'filtered'
    RETURNING q.id
)
SELECT m.domain, count(*), count(*) FILTER (WHERE m.margin <= %(threshold)s),
       (SELECT count(*) FROM filtered), (SELECT count(*) FROM restored)
FROM m GROUP BY m.domain
"""

_UNFILTER = f"""
UPDATE annotation_pair q
SET {_RESTORE}
WHERE q.dataset_id = %(dataset)s AND q.id > %(lo)s AND q.id <= %(hi)s
  AND q.status = 'filtered' AND left(q.status_reason, %(taglen)s) = %(tag)s
RETURNING q.domain
"""


_UNFILTER_ONE = f"""
UPDATE annotation_pair q
SET {_RESTORE}
WHERE q.id = %(pair)s AND q.status = 'filtered' AND q.status_reason = %(reason)s
RETURNING q.status
"""


def unfilter_pair(pair):
    """Put one filtered pair back as the unfilter job does: the status and the earlier reason its reason
    recorded (a pair filtered otherwise goes back to pending, with no reason). Returns the new status, or
    None when the pair is no longer filtered with the reason read (someone changed it meanwhile)."""
    with connection.cursor() as cursor:
        cursor.execute(_UNFILTER_ONE, {"pair": pair.pk, "reason": pair.status_reason})
        row = cursor.fetchone()
    return row[0] if row else None


def apply_chunk(dataset, reward_model, lo, hi, threshold):
    """Filter or restore the eligible pairs with lo < id <= hi; returns the chunk's counts."""
    counts = {"pairs_scored": 0, "pairs_filtered": 0, "pairs_kept": 0, "newly_filtered": 0, "restored": 0,
              "reward_by_domain": {}}
    with connection.cursor() as cursor:
        cursor.execute(_APPLY, _sql_params(dataset, reward_model, lo=lo, hi=hi, threshold=threshold))
        for domain, scored, filtered, newly, restored in cursor.fetchall():
            counts["pairs_scored"] += scored
            counts["pairs_filtered"] += filtered
            counts["pairs_kept"] += scored - filtered
            counts["newly_filtered"], counts["restored"] = newly, restored
            counts["reward_by_domain"][domain] = {"scored": scored, "filtered": filtered, "kept": scored - filtered}
    return counts


def unfilter_chunk(dataset, reward_model, lo, hi):
    with connection.cursor() as cursor:
        cursor.execute(_UNFILTER, _sql_params(dataset, reward_model, lo=lo, hi=hi))
        domains = [row[0] for row in cursor.fetchall()]
    by_domain = {}
    for d in domains:
        by_domain[d] = by_domain.get(d, 0) + 1
    return {"restored": len(domains), "restored_by_domain": by_domain}


def _pair_bounds(dataset, after):
    """The id that ends the next chunk of the dataset's pairs after `after`, or None when none are left."""
    ids = Pair.objects.filter(dataset=dataset, pk__gt=after).order_by("pk").values_list("pk", flat=True)
    last = ids[PAIR_CHUNK - 1:PAIR_CHUNK]
    if last:
        return last[0]
    return ids.order_by("-pk").first()


@job_kind("reward_filter", label=pgettext_lazy("job kind", "reward filter"), counts={
    "responses_scored": gettext_lazy("Responses scored"),
    "pairs_scored": gettext_lazy("Pairs with both rewards"),
    "pairs_filtered": gettext_lazy("Pairs at or below the threshold"),
    "pairs_kept": gettext_lazy("Pairs above the threshold"),
    "newly_filtered": gettext_lazy("Pairs newly filtered"),
    "restored": gettext_lazy("Pairs restored"),
})
def run_reward_filter(ctx: JobContext):
    params = ctx.params
    dataset = Dataset.objects.get(pk=ctx.job.dataset_id)
    reward_model = RewardModel.objects.filter(pk=params["reward_model"]).first()
    if reward_model is None:
        raise JobFailed("the reward model was deleted")
    mode = params["mode"]
    cursor = ctx.cursor
    todo = np.zeros(0, dtype=np.int64)
    if mode != "unfilter" and cursor.get("phase", "score") == "score":
        todo = responses_to_score(dataset, reward_model, after=cursor.get("after", 0))
    if not ctx.job.total:
        pairs = 0 if mode == "score" else Pair.objects.filter(dataset=dataset).count()
        ctx.set_total(todo.size + pairs)
    size = score_chunk_size(reward_model)
    for start in range(0, todo.size, size):
        chunk = todo[start:start + size]
        # The model scores a chunk in batches, outside the chunk's transaction: between them the job
        # renews its lease and honours a cancel.
        found, rewards = score_responses(reward_model, chunk, lambda: ctx.heartbeat(every=HEARTBEAT_S))
        with transaction.atomic():
            added = store_rewards(reward_model, found, rewards)
            ctx.commit(done=chunk.size, counts={"responses_scored": added},
                       cursor={"phase": "score", "after": int(chunk[-1])})
    if mode == "score":
        return
    after = ctx.cursor.get("pairs_after", 0) if ctx.cursor.get("phase") == "pairs" else 0
    while (hi := _pair_bounds(dataset, after)) is not None:
        with transaction.atomic():
            if mode == "apply":
                counts = apply_chunk(dataset, reward_model, after, hi, params["threshold"])
            else:
                counts = unfilter_chunk(dataset, reward_model, after, hi)
            done = Pair.objects.filter(dataset=dataset, pk__gt=after, pk__lte=hi).count()
            ctx.commit(done=done, counts=counts, cursor={"phase": "pairs", "pairs_after": hi})
        after = hi


WHAT_IF_THRESHOLDS = (-1.0, -0.5, 0.0, 0.5, 1.0)
HISTOGRAM_BINS = 20


def what_if(dataset, reward_model, threshold=0.0):
    """Margins of the eligible pairs from the stored rewards: a histogram per domain on one symmetric
    scale, and how many pairs would survive (margin above t) for several thresholds t."""
    thresholds = sorted({*WHAT_IF_THRESHOLDS, float(threshold)})
    survive = ", ".join(f"count(*) FILTER (WHERE m.margin > %(t{i})s)" for i in range(len(thresholds)))
    params = _sql_params(dataset, reward_model, lo=0, hi=2**62, **{f"t{i}": t for i, t in enumerate(thresholds)})
    margins = _MARGINS.format(eligible=_eligible_sql())
    with connection.cursor() as cursor:
        cursor.execute(
            f"""WITH m AS ({margins})
                SELECT m.domain, count(*), {survive},
                       percentile_cont(0.01) WITHIN GROUP (ORDER BY m.margin),
                       percentile_cont(0.99) WITHIN GROUP (ORDER BY m.margin)
                FROM m GROUP BY ROLLUP (m.domain)""",
            params,
        )
        rows = cursor.fetchall()
        cursor.execute(f"SELECT count(*) FROM annotation_pair q WHERE q.dataset_id = %(dataset)s AND {_eligible_sql()}",
                       params)
        eligible = cursor.fetchone()[0]
        total = next((r for r in rows if r[0] is None), None)
        extent = max(abs(total[-2]), abs(total[-1]), 1e-6) if total and total[1] else 1.0
        cursor.execute(
            f"""WITH m AS ({margins})
                SELECT m.domain,
                       LEAST(GREATEST(width_bucket(m.margin, %(lo_edge)s, %(hi_edge)s, %(bins)s), 1), %(bins)s),
                       count(*)
                FROM m GROUP BY 1, 2""",
            {**params, "lo_edge": -extent, "hi_edge": extent, "bins": HISTOGRAM_BINS},
        )
        buckets = cursor.fetchall()
    return _what_if_result(rows, buckets, thresholds, threshold, extent, eligible)


def _what_if_result(rows, buckets, thresholds, threshold, extent, eligible):
    width = 2 * extent / HISTOGRAM_BINS
    hist = {}
    for domain, bucket, n in buckets:
        hist.setdefault(domain, [0] * HISTOGRAM_BINS)[bucket - 1] = n
    domains = []
    for row in sorted(rows, key=lambda r: (r[0] is None, r[0] or "")):
        domain, scored, kept = row[0], row[1], row[2:2 + len(thresholds)]
        if domain is None:
            counts = [sum(column) for column in zip(*hist.values())]
        else:
            counts = hist.get(domain, [])
        peak = max(counts or [0]) or 1
        domains.append({
            "domain": domain or "all",
            "label": Domain(domain).label if domain in Domain.values else (domain or _("All domains")),
            "scored": scored,
            "survive": [{"threshold": t, "kept": k, "filtered": scored - k,
                         "share": k / scored if scored else 0.0, "current": t == threshold}
                        for t, k in zip(thresholds, kept)],
            "bars": [{"lo": -extent + i * width, "hi": -extent + (i + 1) * width, "n": n,
                      "x": i * 10, "height": round(60 * n / peak, 2), "y": round(60 - 60 * n / peak, 2),
                      "below": -extent + (i + 1) * width <= threshold}
                     for i, n in enumerate(counts)],
        })
    scored_total = next((d["scored"] for d in domains if d["domain"] == "all"), 0)
    return {"domains": domains, "thresholds": thresholds, "threshold": threshold, "extent": extent,
            "bin_width": width, "scored": scored_total, "unscored": eligible - scored_total,
            "threshold_x": round(min(max((threshold + extent) / width, 0), HISTOGRAM_BINS) * 10, 2)}
