"""Which pairs an export holds, in one SQL expression (`REASON_SQL`), so the counts in the manifest
and the rows in the files cannot disagree:
- by default a pair is exported when its status is pending or kept and no review excludes it: a
  review with the verdict both_bad, or one saying the better response is incorrect
  (better_correct false), excludes the pair;
- `statuses` picks other pair statuses (review exclusions still apply); `all` exports every
  pair, with no exclusion at all;
- a pair an admin decided, or agreeing reviews did under the dataset's review policy (review/decisions.py: its
  status_reason is the decision's tag), is taken as decided: no review excludes it;
- a pair whose status is `swapped` (a decision) is exported with chosen and rejected exchanged; an undecided
  pair whose reviews say "rejected is better" more often than "chosen is better" is exported swapped too
  (also under `all`; stream.py); a tie between the two verdicts leaves it as it is, and so does a decision to keep;
- domains, a minimum panel gap (chosen score minus rejected score, before any swap; pairs without
  scores fail it) and a row limit (the first rows in pair id order).

The split is made by prompt: within each domain the selected prompts are ordered by
md5(prompt id, seed) and the first round(n × (1 − split)) go to test (halves round up), so no prompt is in both
splits and each domain is split in the same proportion.
"""

from collections import Counter
from contextlib import contextmanager
from dataclasses import dataclass, field

from django.db import connection, transaction

from annotation.models import Domain, Pair

from ..decisions import DECIDED_SQL

DEFAULT_STATUSES = ("pending", "kept", "swapped")
STATUS_ALL = "all"


class ExportError(Exception):
    """The export as asked cannot be made; the message says why."""


@dataclass
class Selection:
    statuses: list = field(default_factory=lambda: list(DEFAULT_STATUSES))
    domains: list = field(default_factory=list)
    min_gap: float | None = None
    split: float | None = None
    seed: int = 0
    limit: int | None = None
    with_meta: bool = False
    bom: bool = False
    raw_csv: bool = False

    @property
    def everything(self):
        return STATUS_ALL in self.statuses

    @classmethod
    def from_params(cls, params):
        known = {k: params[k] for k in cls.__dataclass_fields__ if k in params}
        return cls(**known)

    def check(self):
        unknown = set(self.statuses) - {STATUS_ALL, *Pair.Status.values}
        if unknown or not self.statuses:
            raise ExportError(f"unknown status {sorted(unknown)}; expected all or pair statuses such as pending, kept")
        bad_domains = set(self.domains) - set(Domain.values)
        if bad_domains:
            raise ExportError(f"unknown domain {sorted(bad_domains)}; expected some of {', '.join(Domain.values)}")
        if self.split is not None and not 0 < self.split < 1:
            raise ExportError(f"split is the train fraction, strictly between 0 and 1; got {self.split}")
        if self.limit is not None and self.limit < 1:
            raise ExportError(f"limit must be at least 1; got {self.limit}")


@contextmanager
def query_cursor():
    """A cursor in its own transaction with JIT off: the planner's cost estimate for a scan over a
    1M-pair dataset triggers JIT compilation, which costs ten times the query itself (330 ms of
    365 ms per 5,000-pair batch, measured at 100k pairs)."""
    with transaction.atomic(), connection.cursor() as cursor:
        cursor.execute("SET LOCAL jit = off")
        yield cursor


# Why a pair is left out, or '' when it is exported. %(everything)s turns every exclusion off.
REASON_SQL = f"""
CASE
  WHEN %(everything)s THEN ''
  WHEN NOT (p.status = ANY(%(statuses)s)) THEN 'status:' || p.status
  WHEN {DECIDED_SQL} THEN ''
  WHEN EXISTS (SELECT 1 FROM review_review v WHERE v.pair_id = p.id AND v.verdict = 'both_bad')
    THEN 'review:both_bad'
  WHEN EXISTS (SELECT 1 FROM review_review v WHERE v.pair_id = p.id AND v.better_correct = false)
    THEN 'review:incorrect'
  ELSE '' END
|| CASE
  WHEN %(has_domains)s AND NOT (p.domain = ANY(%(domains)s)) THEN '|domain'
  WHEN %(has_min_gap)s AND NOT COALESCE(p.chosen_score - p.rejected_score >= %(min_gap)s, false) THEN '|min_gap'
  ELSE '' END
"""


def sql_params(dataset, sel):
    """The parameters of REASON_SQL (and of the queries built on it) for this dataset and selection."""
    return {
        "dataset": dataset.pk,
        "everything": sel.everything,
        "statuses": [s for s in sel.statuses if s != STATUS_ALL],
        "has_domains": bool(sel.domains),
        "domains": list(sel.domains),
        "has_min_gap": sel.min_gap is not None,
        "min_gap": sel.min_gap if sel.min_gap is not None else 0.0,
        "seed": str(sel.seed),
    }


def exclusion_counts(dataset, sel):
    """(selected pairs, {reason: pairs left out}); a pair left out for two reasons counts under the first."""
    sql = f"SELECT ({REASON_SQL}) AS reason, count(*) FROM annotation_pair p WHERE p.dataset_id = %(dataset)s GROUP BY 1"
    with query_cursor() as cursor:
        cursor.execute(sql, sql_params(dataset, sel))
        rows = cursor.fetchall()
    selected, excluded = 0, Counter()
    for reason, n in rows:
        # 'status:filtered|domain' counts under its first reason; '' is a selected pair.
        first = reason.lstrip("|").split("|")[0]
        if first:
            excluded[first] += n
        else:
            selected += n
    return selected, dict(excluded)


def test_prompt_ids(dataset, sel):
    """The prompts that go to the test split: per domain, the first round(n × (1 − split)) by seeded hash."""
    sql = f"""
        WITH selected AS (
            SELECT DISTINCT p.prompt_id, p.domain FROM annotation_pair p
            WHERE p.dataset_id = %(dataset)s AND ({REASON_SQL}) = ''
        ), ranked AS (
            SELECT prompt_id,
                   row_number() OVER (PARTITION BY domain ORDER BY md5(prompt_id::text || ':' || %(seed)s)) AS rank,
                   count(*) OVER (PARTITION BY domain) AS n
            FROM selected
        )
        SELECT prompt_id FROM ranked WHERE rank <= round((n * %(test_fraction)s)::numeric)"""
    params = {**sql_params(dataset, sel), "test_fraction": 1 - sel.split}
    with query_cursor() as cursor:
        cursor.execute(sql, params)
        return {row[0] for row in cursor.fetchall()}
