"""Audit samples: draw a seeded stratified sample of a dataset's pairs, report what its reviewers found.

The paper's quality claim rests on 240 pairs, 40 per domain, checked by two people. An audit is that
as a dated record: n pairs per domain drawn from a pair list (by default the pairs an export takes:
pending and kept), ordered within each domain by md5(pair id, seed) so that the same seed draws the
same sample, and reviewed through the queue by k reviewers each.

The report counts, per domain, the pairs whose chosen response is better *and* correct: a review says
so when its verdict is "chosen is better" and it marks the better response correct (it accepts the pair,
`Review.ACCEPTS`); a pair counts when
more than half of its reviews say so (with two reviewers: both). The share comes with a 95 % Wilson
interval, and agreement between reviewers on that yes/no judgement (Cohen's kappa for two reviewers,
Krippendorff's alpha for more). Reviews are read when the report is shown, so it follows late reviews.
"""

from collections import defaultdict

from django.db.models import Case, CharField, Count, F, OuterRef, Subquery, Value, When, Window
from django.db.models.functions import MD5, Cast, Coalesce, Concat, RowNumber
from django.http import QueryDict
from django.utils.translation import gettext as _
from django.utils.translation import gettext_lazy

from annotation.models import Domain, Pair

from .agreement import agreement, difference_interval, wilson_interval
from .models import Audit, Review
from .selections import select_pairs, selection

DEFAULT_QUERY = "status=pending&status=kept"


class AuditError(Exception):
    pass


def draw(dataset, *, n_per_domain=40, reviews_per_pair=2, seed=0, query=DEFAULT_QUERY, label="", user=None):
    """Draw and save an audit. Raises AuditError for a bad pair list or an empty sample."""
    pairs, form = select_pairs(dataset, QueryDict(query))
    if pairs is None:
        raise AuditError("; ".join(str(e) for errors in form.errors.values() for e in errors))
    ranked = pairs.order_by().annotate(
        rank=Window(RowNumber(), partition_by=[F("domain")],
                    order_by=MD5(Concat(Cast("pk", CharField()), Value(f":{seed}"))).asc()),
    ).filter(rank__lte=n_per_domain)
    drawn = sorted(ranked.values_list("domain", "rank", "pk"))
    if not drawn:
        raise AuditError(_("the list has no pairs to draw from"))
    return Audit.objects.create(dataset=dataset, label=label, created_by=user, seed=seed, n_per_domain=n_per_domain,
                                reviews_per_pair=reviews_per_pair, query=query, pair_ids=[pk for *_x, pk in drawn])


def small_strata(dataset, query, n_per_domain):
    """[(domain, pairs in the list)] for each domain of the list with fewer than `n_per_domain` pairs: there
    the sample is the whole stratum, which the form makes the user agree to rather than doing it silently."""
    pairs, form = select_pairs(dataset, QueryDict(query))
    if pairs is None:
        raise AuditError("; ".join(str(e) for errors in form.errors.values() for e in errors))
    sizes = pairs.order_by().values_list("domain").annotate(n=Count("*")).order_by("domain")
    return [(domain, n) for domain, n in sizes if n < n_per_domain]


def report(audit):
    """Per domain (and overall): pairs drawn, pairs reviewed, good pairs, share, Wilson interval, agreement."""
    domains = dict(Pair.objects.filter(pk__in=audit.pair_ids).values_list("pk", "domain"))
    ratings = defaultdict(dict)  # pair → reviewer → good?
    reviews = Review.objects.filter(pair_id__in=audit.pair_ids).annotate(
        good=Case(When(Review.ACCEPTS, then=True), default=False))
    for pair_id, reviewer_id, good in reviews.values_list("pair_id", "reviewer_id", "good"):
        ratings[pair_id][reviewer_id] = good
    labels = dict(Domain.choices)
    rows = []
    for domain in [d for d, _ in Domain.choices if d in domains.values()] + [None]:
        pair_ids = [p for p, d in domains.items() if domain is None or d == domain]
        rated = {p: ratings[p] for p in pair_ids if ratings.get(p)}
        good = sum(1 for r in rated.values() if sum(r.values()) * 2 > len(r))
        n = len(rated)
        rows.append({
            "domain": domain or "all", "label": labels.get(domain, "") if domain else "",
            "drawn": len(pair_ids), "reviewed": n,
            "complete": sum(1 for r in rated.values() if len(r) >= audit.reviews_per_pair),
            "reviews": sum(len(r) for r in rated.values()),
            "good": good, "share": good / n if n else None, "interval": wilson_interval(good, n),
            "agreement": agreement(rated),
        })
    return rows


def compare(first, second):
    """Per domain present in either audit: both shares and the difference (second − first) with Newcombe's
    95 % interval."""
    a = {row["domain"]: row for row in report(first)}
    b = {row["domain"]: row for row in report(second)}
    rows = []
    for domain in [d for d in a if d != "all"] + [d for d in b if d not in a and d != "all"] + ["all"]:
        ra, rb = a.get(domain), b.get(domain)
        diff = None
        if ra and rb and ra["reviewed"] and rb["reviewed"]:
            diff = {"value": rb["share"] - ra["share"],
                    "interval": difference_interval(rb["good"], rb["reviewed"], ra["good"], ra["reviewed"])}
        rows.append({"domain": domain, "label": (ra or rb)["label"], "first": ra, "second": rb, "difference": diff})
    return rows


@selection("audit-failures", gettext_lazy("Audit failures"), "audit",
           description=gettext_lazy("Pairs of an audit's sample that its reviews do not accept (no more than half of a pair's "
                         "reviews find the chosen response better and correct)."), audit_id=0)
def audit_failures(pairs, dataset, settings):
    """The sample's reviewed pairs that the report counts as not good: the list an admin decides or re-reviews."""
    audit = Audit.objects.filter(pk=settings["audit_id"], dataset=dataset).first()
    if audit is None:
        return pairs.none()
    reviews = Review.objects.filter(pair=OuterRef("pk")).order_by().values("pair")
    count = reviews.annotate(n=Count("pk")).values("n")
    accepting = reviews.filter(Review.ACCEPTS).annotate(n=Count("pk")).values("n")
    return (pairs.filter(pk__in=audit.pair_ids)
            .alias(reviews_n=Subquery(count), accepts_n=Coalesce(Subquery(accepting), 0))
            .filter(reviews_n__gt=0, reviews_n__gte=F("accepts_n") * 2))
