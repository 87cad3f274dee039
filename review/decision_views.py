"""Decision pages: decide a pair list or one pair (with a confirmation showing what changes), the dataset's
decisions, one decision with its undo. The workflow is review/decisions.py; these views only check access,
read the form and answer."""

from django.contrib import messages
from django.contrib.auth.decorators import login_required
from django.shortcuts import get_object_or_404, redirect, render
from django.utils.http import url_has_allowed_host_and_scheme
from django.utils.translation import gettext as _
from django.views.decorators.http import require_GET, require_POST

from annotation.models import Role

from . import decisions
from .access import get_dataset_for
from .forms import DecisionForm
from .models import DecisionBatch

LIST_SIZE = 100


def _get_batch_for(request, pk, batch_pk, role):
    dataset = get_dataset_for(request, pk, role)
    batch = get_object_or_404(DecisionBatch.objects.select_related("actor", "undone_by", "job"), pk=batch_pk,
                              dataset=dataset)
    return dataset, batch


@login_required
@require_POST
def decide(request, pk):
    dataset = get_dataset_for(request, pk, Role.ADMIN)
    form = DecisionForm(request.POST)
    ctx = {"dataset": dataset, "form": form}
    if not form.is_valid():
        return render(request, "review/decision_confirm.html", ctx, status=400)
    data = form.cleaned_data
    pairs, errors = decisions.pairs_of_selection(dataset, data["selection"])
    if pairs is None:
        form.add_error(None, "; ".join(errors))
        return render(request, "review/decision_confirm.html", ctx, status=400)
    if not data["confirm"]:
        confirm = DecisionForm(initial={**data, "confirm": True})
        return render(request, "review/decision_confirm.html",
                      {**ctx, "form": confirm, "preview": decisions.preview(dataset, pairs, data["action"]),
                       "action_label": DecisionBatch.Action(data["action"]).label, "selection": data["selection"]})
    try:
        batch = decisions.start_decision(dataset, data["selection"], data["action"], request.user, data["reason"])
    except decisions.DecisionError as exc:
        form.add_error(None, str(exc))
        return render(request, "review/decision_confirm.html", ctx, status=400)
    if batch.job_id:
        messages.info(request, _("Decision %(pk)s is being made by a job: the pairs change a range at a time.")
                      % {"pk": batch.pk})
    else:
        messages.success(request, _("Decision %(pk)s: %(n)s pairs changed.") % {"pk": batch.pk, "n": batch.changed})
    if data["next"] and url_has_allowed_host_and_scheme(data["next"], allowed_hosts={request.get_host()}):
        return redirect(data["next"])
    return redirect("decision-detail", dataset.pk, batch.pk)


@login_required
@require_GET
def decision_list(request, pk):
    dataset = get_dataset_for(request, pk, Role.VIEWER)
    batches = DecisionBatch.objects.filter(dataset=dataset).select_related("actor", "undone_by")
    if request.GET.get("policy") != "1":
        batches = batches.exclude(action=DecisionBatch.Action.POLICY)
    return render(request, "review/decisions.html", {
        "dataset": dataset, "batches": batches[:LIST_SIZE], "with_policy": request.GET.get("policy") == "1",
        "is_admin": dataset.allows(request.user, Role.ADMIN)})


@login_required
@require_GET
def decision_detail(request, pk, batch_pk):
    dataset, batch = _get_batch_for(request, pk, batch_pk, Role.VIEWER)
    return render(request, "review/decision_detail.html", {
        "job": batch.job if batch.job_id and batch.job.finished_at is None else None,
        "dataset": dataset, "batch": batch, "is_admin": dataset.allows(request.user, Role.ADMIN),
        "can_review": dataset.allows(request.user, Role.REVIEWER)})


@login_required
@require_POST
def decision_undo(request, pk, batch_pk):
    dataset, batch = _get_batch_for(request, pk, batch_pk, Role.ADMIN)
    try:
        batch = decisions.start_undo(batch, request.user)
    except decisions.DecisionError as exc:
        messages.error(request, str(exc))
    else:
        if batch.job_id and batch.job.kind == decisions.UNDO_KIND and batch.job.finished_at is None:
            messages.info(request, _("Decision %(pk)s is being undone by a job.") % {"pk": batch.pk})
            return redirect("decision-detail", dataset.pk, batch.pk)
        messages.success(request, _("Decision %(pk)s undone: %(restored)s pairs put back, %(left)s changed since "
                                    "and left as they are.")
                         % {"pk": batch.pk, "restored": batch.restored, "left": batch.left})
    return redirect("decision-detail", dataset.pk, batch.pk)
