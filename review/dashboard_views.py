"""Dashboard pages: overview, disagreements, judge analysis. Every member of the dataset may read
them (viewer and up); only admins start a refresh. The numbers come from snapshots
(review/dashboards.py); chart data goes to the page as JSON (`json_script`) and static/js/charts.js
draws it, since the Content-Security-Policy allows no inline script."""

import functools
from urllib.parse import urlencode

from django.contrib.auth.decorators import login_required
from django.http import Http404
from django.shortcuts import redirect, render
from django.urls import reverse
from django.utils.translation import gettext as _
from django.views.decorators.http import require_GET, require_POST

from annotation.models import Domain, Judgement, Pair, Role

from . import dashboards, judge_analysis
from .access import get_dataset_for
from .selections import REGISTRY


class _Pending(Exception):
    """A large dataset's dashboard has never been computed: a refresh job is computing it."""


def _page(request, dataset, name, reviews_live=False):
    snap = dashboards.snapshot(dataset, name)
    if snap is None:
        # Filling a cache, not changing data: any member's first visit may start the (single) refresh job.
        raise _Pending(dashboards.start_refresh(dataset, user=request.user))
    return snap.data, {"dataset": dataset, "is_admin": dataset.allows(request.user, Role.ADMIN),
                       "can_review": dataset.allows(request.user, Role.REVIEWER),  # a queue beside each number
                       "fresh": dashboards.freshness(dataset, snap, reviews_live=reviews_live)}


def _pending(request, dataset, job):
    return render(request, "review/dashboard_pending.html", {"dataset": dataset, "job": job})


def dashboard_page(view):
    """Render the 'being computed' page when a large dataset's snapshot does not exist yet."""

    @functools.wraps(view)
    def wrapped(request, pk, *args, **kwargs):
        try:
            return view(request, pk, *args, **kwargs)
        except _Pending as pending:
            return _pending(request, get_dataset_for(request, pk, Role.VIEWER), pending.args[0])

    return wrapped


def pair_list_url(dataset, **params):
    """The pair list behind a number: `pair-list` with PairFilter parameters."""
    query = urlencode({k: v for k, v in params.items() if v is not None}, doseq=True)
    return reverse("pair-list", args=[dataset.pk]) + (f"?{query}" if query else "")


def _num(x):
    # The shortest text that reads back as the same float: a bucket bound must survive the URL exactly.
    return repr(float(x))


def _finish(charts):
    """Mark charts with nothing to draw, so the page says so instead of drawing empty axes."""
    for chart in charts.values():
        chart["empty"] = not any(v for d in chart["datasets"] for v in d["data"])
    return charts


@login_required
@require_GET
@dashboard_page
def overview(request, pk):
    dataset = get_dataset_for(request, pk, Role.VIEWER)
    data, ctx = _page(request, dataset, "overview", reviews_live=True)
    data = dashboards.with_live_reviews(dataset, data)
    for row in [*data["domains"], data["total"]]:
        domain = row.get("domain")
        row["label"] = str(Domain(domain).label) if domain else _("Total")
        row["cells"] = [{"key": "total", "n": row["total"], "url": pair_list_url(dataset, domain=domain)}]
        row["cells"] += [{"key": s, "n": row[s], "url": pair_list_url(dataset, domain=domain, status=s)}
                         for s in Pair.Status.values]
        row["cells"].append({"key": "reviewed", "n": row["reviewed"],
                             "url": pair_list_url(dataset, domain=domain, reviewed="yes")})
    for r in data["reasons"]:
        r["url"] = pair_list_url(dataset, status="filtered", reason=r["reason"])
    for r in data["acceptance"] + data["crm_agreement"]:
        r["label"] = str(Domain(r["domain"]).label)  # in the reader's language, not the refresher's
    ctx.update(data=data, statuses=Pair.Status.choices, charts=_finish(overview_charts(dataset, data)))
    return render(request, "review/overview.html", ctx)


def overview_charts(dataset, data):
    judge_links = {j["name"]: reverse("judge-detail", args=[dataset.pk, j["id"]])
                   for j in data["coverage"]["judges"]}
    domains = data["domains"]
    model = data["reward_model"]
    return {
        "scores": {
            "type": "bar", "labels": [str(k) for k in range(1, 11)], "title": _("Scores per judge"),
            "datasets": [{"label": h["judge"], "data": h["counts"]} for h in data["score_hist"]],
            "links": [[judge_links.get(h["judge"])] * 10 for h in data["score_hist"]],
        },
        "gaps": {
            "type": "bar", "title": _("Panel score gap"),
            "labels": [f"{_num(b['lo'])} … {_num(b['hi'])}" for b in data["gap_hist"]["buckets"]],
            "datasets": [{"label": _("Pairs"), "data": [b["n"] for b in data["gap_hist"]["buckets"]]}],
            "links": [[pair_list_url(dataset, view="gap-range", gap_min=_num(b["lo"]), gap_max=_num(b["hi"]))
                       for b in data["gap_hist"]["buckets"]]],
        },
        "margins": {
            "type": "bar", "title": _("Reward margin"),
            "labels": [f"{_num(b['lo'])} … {_num(b['hi'])}" for b in data["margin_hist"]["buckets"]],
            "datasets": [{"label": _("Pairs"), "data": [b["n"] for b in data["margin_hist"]["buckets"]]}],
            "links": [[pair_list_url(dataset, view="margin-range", margin_min=_num(b["lo"]),
                                     margin_max=_num(b["hi"]), model=model and model["id"])
                       for b in data["margin_hist"]["buckets"]]],
        },
        "crm": {
            "type": "bar", "title": _("Reward model agrees with the panel (%)"), "max": 100,
            "labels": [r["label"] for r in data["crm_agreement"]],
            "datasets": [{"label": _("Agreement %"), "data": [round(100 * r["agree_share"], 1)
                                                               for r in data["crm_agreement"]]}],
            "links": [[pair_list_url(dataset, view="reward-sign", domain=r["domain"], model=model and model["id"])
                       for r in data["crm_agreement"]]],
        },
        "acceptance": {
            "type": "bar", "title": _("Reviewer acceptance (%)"), "max": 100,
            "labels": [r["label"] for r in data["acceptance"]],
            "datasets": [{"label": _("Accepted %"), "data": [round(100 * r["rate"], 1) for r in data["acceptance"]]}],
            "links": [[pair_list_url(dataset, domain=r["domain"], reviewed="yes") for r in data["acceptance"]]],
        },
        "progress": {
            "type": "bar", "stacked": True, "title": _("Review progress"),
            "labels": [str(Domain(r["domain"]).label) for r in domains],
            "datasets": [{"label": _("Reviewed"), "data": [r["reviewed"] for r in domains]},
                         {"label": _("Not reviewed"), "data": [r["total"] - r["reviewed"] for r in domains]}],
            "links": [[pair_list_url(dataset, domain=r["domain"], reviewed="yes") for r in domains],
                      [pair_list_url(dataset, domain=r["domain"], reviewed="no") for r in domains]],
        },
    }


@login_required
@require_GET
@dashboard_page
def disagreements(request, pk):
    dataset = get_dataset_for(request, pk, Role.VIEWER)
    data, ctx = _page(request, dataset, "disagreements")
    domain = request.GET.get("domain", "")
    if domain not in Domain.values:
        domain = ""
    sort = request.GET.get("sort", "count")
    rows = []
    for entry in data["views"]:
        view = REGISTRY.get(entry["name"])
        if view is None:
            continue
        count = entry["counts"].get(domain, 0) if domain else entry["total"]
        rows.append({"view": view, "count": count, "url": pair_list_url(dataset, view=view.name, domain=domain or None),
                     "by_domain": [{"domain": d, "n": entry["counts"].get(d, 0),
                                    "url": pair_list_url(dataset, view=view.name, domain=d)} for d in Domain.values]})
    rows.sort(key=(lambda r: str(r["view"].label)) if sort == "name" else (lambda r: -r["count"]))
    ctx.update(rows=[r for r in rows if not r["view"].signal], signal_rows=[r for r in rows if r["view"].signal],
               domain=domain, sort=sort, domains=Domain.choices)
    return render(request, "review/disagreements.html", ctx)


def _labelled(judges):
    for j in judges:
        for b in j["by_domain"]:
            b["label"] = str(Domain(b["domain"]).label)
    return judges


def _judge_charts(dataset, judges):
    return {
        "judge_scores": {
            "type": "bar", "labels": [str(k) for k in range(1, 11)], "title": _("Score histogram"),
            "datasets": [{"label": j["name"], "data": j["histogram"]} for j in judges],
            "links": [[reverse("judge-detail", args=[dataset.pk, j["id"]])] * 10 for j in judges],
        },
        "judge_domains": {
            "type": "bar", "title": _("Mean score by domain"), "max": 10,
            "labels": [str(label) for _d, label in Domain.choices],
            "datasets": [{"label": j["name"], "data": [next((round(b["mean"], 3) for b in j["by_domain"]
                                                              if b["domain"] == d), None) for d in Domain.values]}
                         for j in judges],
            "links": [],
        },
    }


@login_required
@require_GET
@dashboard_page
def judge_list(request, pk):
    dataset = get_dataset_for(request, pk, Role.VIEWER)
    data, ctx = _page(request, dataset, "judges")
    judges = _labelled(data["judges"])
    names = {str(j["id"]): j["name"] for j in judges}
    for j in judges:
        j["kappa_row"] = [j["kappa_judges"].get(str(other["id"])) for other in judges]
    ctx.update(judges=judges, names=names, charts=_finish(_judge_charts(dataset, judges)),
               self_preferring=judge_analysis.verdict(judges), margin=judge_analysis.SELF_PREFERENCE_MARGIN)
    return render(request, "review/judges.html", ctx)


@login_required
@require_GET
@dashboard_page
def judge_detail(request, pk, judge_pk):
    dataset = get_dataset_for(request, pk, Role.VIEWER)
    data, ctx = _page(request, dataset, "judges")
    judge = next((j for j in _labelled(data["judges"]) if j["id"] == judge_pk), None)
    if judge is None:
        raise Http404("This judge has no judgements in this dataset.")
    names = {str(j["id"]): j["name"] for j in data["judges"]}
    others = [{"name": names.get(k, k), "id": int(k), **v} for k, v in judge["kappa_judges"].items()]
    ctx.update(judge=judge, others=sorted(others, key=lambda o: o["name"]),
               charts=_finish(_judge_charts(dataset, [judge])), examples=_examples(dataset, judge_pk))
    return render(request, "review/judge_detail.html", ctx)


def _examples(dataset, judge_pk, n=10):
    """The judge's newest judgements in the dataset, for a person to read its analyses."""
    return (Judgement.objects.filter(judge_id=judge_pk, response__dataset=dataset)
            .select_related("response", "response__prompt").order_by("-pk")[:n])


@login_required
@require_POST
def refresh(request, pk):
    dataset = get_dataset_for(request, pk, Role.ADMIN)
    job = dashboards.start_refresh(dataset, user=request.user)
    return redirect("job-detail", job.pk)
