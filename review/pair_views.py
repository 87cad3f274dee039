"""Browse and search pairs, a pair's own page with its admin actions, and the low-quality rules page."""

from django.contrib import messages
from django.contrib.auth.decorators import login_required
from django.db.models import Prefetch
from django.shortcuts import get_object_or_404, redirect, render
from django.urls import reverse
from django.utils.translation import gettext as _
from django.views.decorators.http import require_GET, require_POST

from annotation import pairing
from annotation.forms import ScoreForm
from annotation.jobs import running_job
from annotation.models import Domain, Judgement, Pair, Response, RewardScore, Role
from annotation.rejudging import DEFAULT_LIMIT, verdicts_of

from . import (decisions, disagreements, members, pair_actions, pair_count, pairwise_views, quality_rules,
               saved_filters, search, suspicion)
from .access import get_dataset_for
from .models import Review, ReviewEvent, SavedFilter
from .pair_pages import PAGE_SIZE, keyset_page, label_rows, search_page
from .selections import REGISTRY, PairFilter


@login_required
@require_GET
def pair_list(request, pk):
    dataset = get_dataset_for(request, pk, Role.VIEWER)
    params = request.GET.copy()
    position = {key: _positive_int(params.pop(key, [""])[-1]) for key in ("after", "before", "at")}
    form = PairFilter(params)
    rows, page, listing, found, count = [], {}, None, None, None
    if form.is_valid():
        view = REGISTRY.get(form.cleaned_data.get("view") or "")
        if view is not None and hasattr(view.narrow, "stored_at"):
            listing = {"stored_at": members.served_from(view, dataset, form.view_settings)}
        text = form.cleaned_data.get("q")
        order = form.cleaned_data.get("order") or ""
        pairs = form.pairs(dataset, search_text=False)
        if text:
            rows, page, found = search_page(pairs, dataset, text, position["after"], PAGE_SIZE)
        else:
            rows, page = keyset_page(pairs, dataset, order, position, PAGE_SIZE)
            count = pair_count.of(pairs, stored=bool(listing and listing["stored_at"]), shown=len(rows),
                                  whole=not (position["after"] or position["before"] or position["at"])
                                  and "next" not in page)
    label_rows(rows)
    ctx = {"dataset": dataset, "form": form, "rows": rows, "page": page, "count": count,
           "query": form.query_string(), "view_settings": _view_settings(params), "listing": listing,
           "highlight": form.cleaned_data.get("q") if form.is_valid() else "",
           "search": _search_state(dataset, request.user, found, page.get("next"), len(rows)),
           "saved_filters": saved_filters.of(request.user, dataset), "save_form": saved_filters.SaveForm(),
           "rejudge_form": _rejudge_form(dataset, request.user, form)}
    # The queue over exactly this list, and (admins) a decision over it.
    ctx.update(can_review=dataset.allows(request.user, Role.REVIEWER),
               can_decide=form.is_valid() and dataset.allows(request.user, Role.ADMIN))
    template = "review/pair_list.html#results" if request.htmx else "review/pair_list.html"
    return render(request, template, ctx, status=200 if form.is_valid() else 400)


@login_required
@require_POST
def saved_filter_save(request, pk):
    dataset = get_dataset_for(request, pk, Role.VIEWER)
    form = saved_filters.SaveForm(request.POST)
    if not form.is_valid():
        messages.error(request, _("A saved filter needs a name of at most 100 characters."))
        return redirect("pair-list", dataset.pk)
    try:
        saved = saved_filters.save(request.user, dataset, form.cleaned_data["name"], form.cleaned_data["query"])
    except ValueError as exc:
        messages.error(request, str(exc))
        return redirect("pair-list", dataset.pk)
    messages.success(request, _("Filter “%(name)s” saved.") % {"name": saved.name})
    return redirect(f"{reverse('pair-list', args=[dataset.pk])}?{saved.query}")


@login_required
@require_POST
def saved_filter_delete(request, pk, filter_pk):
    dataset = get_dataset_for(request, pk, Role.VIEWER)
    saved = get_object_or_404(SavedFilter, pk=filter_pk, dataset=dataset, user=request.user)
    saved.delete()
    messages.success(request, _("Filter “%(name)s” deleted.") % {"name": saved.name})
    return redirect("pair-list", dataset.pk)


def _rejudge_form(dataset, user, form):
    """For admins, the form that asks a judge about the pairs of this list (when it is valid)."""
    if not form.is_valid() or not dataset.allows(user, Role.ADMIN):
        return None
    return pairwise_views.RejudgeForm(initial={"selection": form.query_string(), "limit": DEFAULT_LIMIT})


def _search_state(dataset, user, found, next_after, shown):
    """What the list says about a search: whether the walk stopped before filling the page, and whether
    the dataset's texts are still being indexed (with the job, or a button for admins to start it)."""
    if found is None:
        return None
    indexed = found.indexed or search.is_indexed(dataset)
    job = None if indexed else running_job(dataset, search.KIND)
    return {"walked": found.walked, "stopped_at": next_after if found.walked_to and shown < PAGE_SIZE else None,
            "indexed": indexed, "job": job, "can_index": not indexed and job is None
            and dataset.allows(user, Role.ADMIN)}


@login_required
@require_POST
def search_index_start(request, pk):
    dataset = get_dataset_for(request, pk, Role.ADMIN)
    job = search.start(dataset, request.user)
    return redirect("job-detail", job.pk)


def _view_settings(params):
    """(name, value) of the chosen view's settings, for the filter form (the URL's value or the default)."""
    view = REGISTRY.get(params.get("view") or "")
    return [(key, params.get(key) or default) for key, default in view.settings.items()] if view else []


def _positive_int(raw):
    try:
        value = int(raw)
    except (TypeError, ValueError):
        return None
    return value if value > 0 else None


@login_required
@require_GET
def pair_detail(request, pk, pair_pk):
    dataset = get_dataset_for(request, pk, Role.VIEWER)
    pair = _get_pair(dataset, pair_pk)
    return render(request, "review/pair_detail.html", _detail_context(request, dataset, pair))


def _get_pair(dataset, pair_pk):
    return get_object_or_404(
        Pair.objects.select_related("prompt", "chosen", "rejected", "build_run", "dataset"), pk=pair_pk,
        dataset=dataset,
    )


def _detail_context(request, dataset, pair):
    is_admin = dataset.allows(request.user, Role.ADMIN)
    judgements = Judgement.objects.select_related("judge", "rubric").order_by("judge__name", "-created_at", "-pk")
    rewards = RewardScore.objects.select_related("reward_model").order_by("reward_model__name",
                                                                           "-reward_model__version")
    responses = {
        r.pk: r for r in Response.objects.filter(pk__in=[pair.chosen_id, pair.rejected_id])
        .prefetch_related(Prefetch("judgements", queryset=judgements), Prefetch("reward_scores", queryset=rewards))
    }
    chosen, rejected = responses[pair.chosen_id], responses[pair.rejected_id]
    rejected_rewards = {s.reward_model_id: s.reward for s in rejected.reward_scores.all()}
    margins = [
        {"model": s.reward_model, "chosen": s.reward, "rejected": rejected_rewards[s.reward_model_id],
         "margin": s.reward - rejected_rewards[s.reward_model_id]}
        for s in chosen.reward_scores.all() if s.reward_model_id in rejected_rewards
    ]
    try:
        can_rebuild = pair_actions.rebuild_params(pair) is not None
    except ValueError:
        can_rebuild = False
    flags = quality_rules.flags_of(pair)
    return {
        "dataset": dataset,
        "pair": pair,
        "is_admin": is_admin,
        "conversation": pair.prompt.messages,
        "sides": [("chosen", _("Chosen"), chosen, pair.chosen_score),
                  ("rejected", _("Rejected"), rejected, pair.rejected_score)],
        "margins": margins,
        "flags": [rule for rule in flags if not rule.signal],
        "signals": [rule for rule in flags if rule.signal],
        "suspicion": suspicion.reasons_of(pair),
        "judge_flips": disagreements.judge_flips(pair),
        "reviews": Review.objects.filter(pair=pair).select_related("reviewer").order_by("-updated_at"),
        "events": ReviewEvent.objects.filter(pair=pair).select_related("actor").order_by("-at", "-pk")[:100],
        "score_form": ScoreForm(initial={"rescore": True}) if is_admin else None,
        "can_rebuild": can_rebuild,
        "pairwise_verdicts": verdicts_of(pair),
        "can_review": dataset.allows(request.user, Role.REVIEWER),
        "decisions": decisions.decisions_of(pair),
        "decided_by": decisions.batch_of(pair),
        "pair_selection": f"pair={pair.pk}",
    }


@login_required
@require_POST
def pair_rescore(request, pk, pair_pk):
    dataset = get_dataset_for(request, pk, Role.ADMIN)
    pair = _get_pair(dataset, pair_pk)
    form = ScoreForm(request.POST)
    if form.is_valid():
        try:
            job = pair_actions.rescore(pair, request.user, form.options())
        except ValueError as exc:
            form.add_error(None, str(exc))
        else:
            return redirect("job-detail", job.pk)
    ctx = {**_detail_context(request, dataset, pair), "score_form": form}
    return render(request, "review/pair_detail.html", ctx, status=400)


@login_required
@require_POST
def pair_unfilter(request, pk, pair_pk):
    dataset = get_dataset_for(request, pk, Role.ADMIN)
    pair = _get_pair(dataset, pair_pk)
    try:
        status = pair_actions.unfilter(pair)
    except pair_actions.ActionRefused as exc:
        messages.error(request, str(exc))
    else:
        messages.success(request, _("Pair %(pk)s is %(status)s again.") % {"pk": pair.pk, "status": status})
    return redirect("pair-detail", dataset.pk, pair.pk)


@login_required
@require_POST
def pair_rebuild(request, pk, pair_pk):
    dataset = get_dataset_for(request, pk, Role.ADMIN)
    pair = _get_pair(dataset, pair_pk)
    try:
        job = pair_actions.rebuild(pair, request.user)
    except pairing.BuildAlreadyRunning as exc:
        messages.error(request, _("A pair build of this dataset is already under way."))
        return redirect("job-detail", exc.job.pk)
    except (pair_actions.ActionRefused, ValueError) as exc:
        messages.error(request, str(exc))
        return redirect("pair-detail", dataset.pk, pair.pk)
    return redirect("job-detail", job.pk)


@login_required
@require_GET
def quality_overview(request, pk):
    dataset = get_dataset_for(request, pk, Role.VIEWER)
    job = quality_rules.stored_counts(dataset)
    all_pairs = Pair.objects.filter(dataset=dataset)
    if job is not None and "pairs" in job.counts:  # the pairs the job counted out of (a count of 1M takes 0.2 s)
        total_pairs = sum(job.counts["pairs"].values())
        domains = [(d, label) for d, label in Domain.choices if job.counts["pairs"].get(d)]
    else:
        total_pairs = all_pairs.count()
        domains = [(d, label) for d, label in Domain.choices if all_pairs.filter(domain=d).exists()]
    if job is not None:
        counts = job.counts
    elif total_pairs <= quality_rules.LIVE_LIMIT:
        counts = {rule.name: quality_rules.count_rule(rule, dataset) for rule in quality_rules.rules()}
    else:
        counts = {}
    rows = []
    for rule in quality_rules.rules():
        by_domain = counts.get(rule.name)
        rows.append({"rule": rule, "total": sum(by_domain.values()) if by_domain is not None else None,
                     "cells": [(d, by_domain.get(d, 0) if by_domain is not None else None) for d, _ in domains]})
    signal_rows = [row for row in rows if row["rule"].signal]
    rows = [row for row in rows if not row["rule"].signal]
    running = running_job(dataset, quality_rules.KIND)
    stale = job is not None and not members.unchanged_since(dataset, job.started_at)
    ctx = {"dataset": dataset, "rows": rows, "signal_rows": signal_rows, "domains": domains,
           "total_pairs": total_pairs, "job": job, "stale": stale, "running": running,
           "is_admin": dataset.allows(request.user, Role.ADMIN), "can_review": dataset.allows(request.user, Role.REVIEWER)}
    return render(request, "review/quality.html", ctx)


@login_required
@require_POST
def quality_recount(request, pk):
    dataset = get_dataset_for(request, pk, Role.ADMIN)
    job = quality_rules.start_count(dataset, user=request.user)
    return redirect("job-detail", job.pk)
