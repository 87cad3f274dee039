"""How many pairs a pair list holds, said as exactly as it can be said cheaply.

Counting a live list of a million pairs means running its whole query (seconds for a view that reads
texts or judgements), where a page stops after 51 rows. So the list's count is:
- exact when the whole list is on the page (a first page without a next one);
- exact for stored lists (review/members.py): a count of their members, an index scan;
- exact for small lists: when PostgreSQL's estimate is under EXACT_BELOW, counted (bounded);
- otherwise PostgreSQL's estimate of the query's rows (EXPLAIN, from pg_class and column statistics),
  shown as "about N" with the word *estimate*.
"""

import json
from dataclasses import dataclass

from django.core.exceptions import EmptyResultSet
from django.db import connection

from . import selections

# Below this many rows (as estimated) a count is cheap enough to be exact: it stops at the bound anyway.
EXACT_BELOW = 2_000


@dataclass(frozen=True)
class Count:
    n: int
    exact: bool


def of(pairs, stored, shown, whole):
    """The Count of `pairs` (the list's queryset, filtered, any order). `whole`: the page shows every pair of
    the list, `shown` of them; `stored`: the list is read from stored members."""
    if whole:
        return Count(shown, True)
    if stored:
        return Count(pairs.order_by().count(), True)
    estimate = estimated(pairs)
    if estimate is not None and estimate < EXACT_BELOW:
        n = pairs.order_by().values("pk")[:EXACT_BELOW + 1].count()
        if n <= EXACT_BELOW:
            return Count(n, True)
    return Count(_rounded(estimate or 0), False)


def estimated(pairs):
    """PostgreSQL's estimate of the rows of `pairs` (the planner's, from table statistics); None if it has none."""
    try:
        with selections.probes_as_joins():  # a probe's estimate is a guess of one half (selections._ProbedExists)
            sql, params = pairs.order_by().values("pk").query.sql_with_params()
    except EmptyResultSet:
        return 0
    with connection.cursor() as cursor:
        cursor.execute("EXPLAIN (FORMAT JSON) " + sql, params)
        plan = cursor.fetchone()[0]
    plan = json.loads(plan) if isinstance(plan, str) else plan
    return int(plan[0]["Plan"]["Plan Rows"]) if plan else None


def _rounded(n):
    """Two significant figures: an estimate claims no more."""
    if n < 100:
        return n
    digits = len(str(n)) - 2
    return round(n, -digits)
