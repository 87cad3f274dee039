"""Reward-model pages: train, score, what-if, apply, unfilter. Every action is a job; the what-if
view only reads stored rewards, so any member of the dataset may open it; the buttons are for admins."""

from django.contrib.auth.decorators import login_required
from django.shortcuts import redirect, render
from django.urls import reverse
from django.views.decorators.http import require_GET, require_POST

from .. import jobs
from ..access import get_dataset_for, get_reward_model_for, visible_reward_models
from ..models import Role
from .benchmark import agreement, filter_decisions, leaderboard
from .filtering import filter_params, what_if
from .forms import LeaderboardForm, PairwiseForm, ThresholdForm, TrainRewardForm
from .pairwise import pairwise_params
from .training import train_params


def section_context(dataset, user):
    """What the dataset page shows about reward models."""
    models = visible_reward_models(user).select_related("trained_on").order_by("name", "-version")[:50]
    is_admin = dataset.allows(user, Role.ADMIN)
    return {"reward_models": models, "reward_train_form": TrainRewardForm() if is_admin else None}


@login_required
@require_POST
def reward_train(request, pk):
    dataset = get_dataset_for(request, pk, Role.ADMIN)
    form = TrainRewardForm(request.POST)
    if not form.is_valid():
        ctx = {"dataset": dataset, "form": form}
        return render(request, "annotation/reward_train.html", ctx, status=400)
    params = train_params(form.cleaned_data["name"], test_fraction=form.cleaned_data["test_fraction"],
                          seed=form.cleaned_data["seed"])
    job = jobs.create_job("train_reward_model", dataset=dataset, user=request.user, params=params)
    return redirect("job-detail", job.pk)


@login_required
@require_GET
def reward_what_if(request, pk, model_pk):
    dataset = get_dataset_for(request, pk, Role.VIEWER)
    reward_model = get_reward_model_for(request, model_pk)
    form = ThresholdForm(request.GET or None)
    threshold = form.cleaned_data["threshold"] if form.is_valid() else 0.0
    ctx = {
        "dataset": dataset, "model": reward_model, "form": form if request.GET else ThresholdForm(),
        "result": what_if(dataset, reward_model, threshold), "threshold": threshold,
        "is_admin": dataset.allows(request.user, Role.ADMIN),
    }
    if request.htmx:
        return render(request, "annotation/reward_what_if.html#result", ctx)
    return render(request, "annotation/reward_what_if.html", ctx)


@login_required
@require_POST
def reward_score(request, pk, model_pk):
    return _start_filter_job(request, pk, model_pk, "score")


@login_required
@require_POST
def reward_apply(request, pk, model_pk):
    return _start_filter_job(request, pk, model_pk, "apply")


@login_required
@require_POST
def reward_unfilter(request, pk, model_pk):
    return _start_filter_job(request, pk, model_pk, "unfilter")


def _start_filter_job(request, pk, model_pk, mode):
    dataset = get_dataset_for(request, pk, Role.ADMIN)
    reward_model = get_reward_model_for(request, model_pk)
    threshold = 0.0
    if mode == "apply":
        form = ThresholdForm(request.POST)
        if not form.is_valid():
            ctx = {"dataset": dataset, "model": reward_model, "form": form, "threshold": 0.0,
                   "result": what_if(dataset, reward_model, 0.0), "is_admin": True}
            return render(request, "annotation/reward_what_if.html", ctx, status=400)
        threshold = form.cleaned_data["threshold"]
    params = filter_params(reward_model, mode=mode, threshold=threshold)
    job = jobs.create_job("reward_filter", dataset=dataset, user=request.user, params=params)
    return redirect("job-detail", job.pk)


@login_required
@require_GET
def reward_leaderboard(request, pk):
    """Pairwise accuracy of every reward model and judge on this dataset's pairs as a gold set (Table 7),
    and the agreement of two filters. Reads stored rewards and judgements only."""
    dataset = get_dataset_for(request, pk, Role.VIEWER)
    models = list(visible_reward_models(request.user).order_by("name", "version"))
    form = LeaderboardForm(request.GET or None, models=models)
    source = form.cleaned_data["source"] if form.is_valid() else "pairs"
    split = form.cleaned_data["split"] if form.is_valid() else "held_out"
    ctx = {"dataset": dataset, "form": form, "board": leaderboard(dataset, models, source, split), "agreement": None,
           "pairwise_form": PairwiseForm() if dataset.allows(request.user, Role.ADMIN) else None}
    if form.is_valid() and form.cleaned_data["filter_a"] and form.cleaned_data["filter_b"]:
        t = form.cleaned_data["threshold"] or 0.0
        a, b = (filter_decisions(dataset, form.filter_spec(key), t) for key in ("filter_a", "filter_b"))
        ctx["agreement"] = {"a": form.filter_label("filter_a"), "b": form.filter_label("filter_b"),
                            "rows": agreement(a, b)}
    return render(request, "annotation/reward_leaderboard.html", ctx)


@login_required
@require_POST
def reward_pairwise(request, pk):
    """Start a pairwise (A/B, both orders) run of a judge over this dataset's pairs."""
    dataset = get_dataset_for(request, pk, Role.ADMIN)
    form = PairwiseForm(request.POST)
    if not form.is_valid():
        return redirect(f"{reverse('reward-leaderboard', args=[dataset.pk])}?pairwise_error=1")
    job = jobs.create_job("pairwise_judge", dataset=dataset, user=request.user,
                          params=pairwise_params(form.cleaned_data["judge"]))
    return redirect("job-detail", job.pk)
