"""Review queue pages: the pair in front of the reviewer, and submit, skip, undo. Every action answers an
htmx request with the next pair's fragment (`#review-item`, swapped outerHTML) and a plain form post with a
redirect back to the queue, so the page works without JavaScript."""

from django.contrib import messages
from django.contrib.auth.decorators import login_required
from django.db import transaction
from django.db.models import Count
from django.http import Http404, QueryDict
from django.shortcuts import get_object_or_404, redirect, render
from django.urls import reverse
from django.utils.translation import gettext as _
from django.views.decorators.http import require_GET, require_POST
from django_htmx.http import trigger_client_event

from annotation.models import Domain, Pair, Role

from . import decisions
from . import queue as queues
from .access import get_dataset_for
from .agreement import agreement
from .forms import QueueActionForm, ReviewSettingsForm, VerdictForm
from .models import Audit, Review, ReviewAssignment, ReviewSettings
from .selections import PairFilter

TEMPLATE = "review/queue.html"
# Every queue request needs the review settings (overlap k, blind): read with the dataset.
QUEUE_RELATED = ("review_settings",)


def _queue(request, dataset, params):
    # Admins may open a queue unblinded (`blind=0`); reviewers review blind whenever the dataset says so.
    queue, form = queues.Queue.from_params(dataset, params, may_unblind=dataset.allows(request.user, Role.ADMIN))
    if queue is None and form is None:
        raise Http404("No such audit in this dataset.")
    return queue, form


def _queue_url(queue, at=None):
    query = queue.query + (f"&at={at}" if at else "")
    return f"{reverse('review-queue', args=[queue.dataset.pk])}?{query}"


def _item_context(request, queue, assignment, form=None, notice=""):
    ctx = {"dataset": queue.dataset, "queue": queue, "notice": notice, "form": form,
           "can_unblind": queue.dataset.allows(request.user, Role.ADMIN)}
    if assignment is not None:
        ctx.update(queues.item(queue, request.user, assignment))
    previous, following, done = queues.position(queue, request.user, assignment)
    ctx.update(previous=previous, following=following, done=done)
    return ctx


def _render_item(request, queue, assignment, form=None, notice="", status=200):
    ctx = _item_context(request, queue, assignment, form, notice)
    if request.htmx:
        response = render(request, f"{TEMPLATE}#item", ctx, status=status)
        return trigger_client_event(response, "reviewed") if status == 200 else response
    ctx["filter_form"] = PairFilter(QueryDict(queue.query)) if queue.audit is None else None
    return render(request, TEMPLATE, ctx, status=status)


@login_required
@require_GET
def queue_page(request, pk):
    dataset = get_dataset_for(request, pk, Role.REVIEWER, related=QUEUE_RELATED)
    queue, filter_form = _queue(request, dataset, request.GET)
    if queue is None:
        return render(request, TEMPLATE, {"dataset": dataset, "filter_form": filter_form}, status=400)
    if request.GET.get("at"):
        assignment = get_object_or_404(ReviewAssignment, pk=request.GET["at"] if request.GET["at"].isdigit() else 0,
                                       reviewer=request.user, queue_key=queue.key)
    else:
        assignment = queues.next_assignment(queue, request.user)
    ctx = _item_context(request, queue, assignment)
    if request.htmx:
        return render(request, f"{TEMPLATE}#item", ctx)
    ctx["filter_form"] = PairFilter(QueryDict(queue.query)) if queue.audit is None else None
    return render(request, TEMPLATE, ctx)


@login_required
@require_GET
def queue_progress(request, pk):
    dataset = get_dataset_for(request, pk, Role.REVIEWER, related=QUEUE_RELATED)
    queue, _form = _queue(request, dataset, request.GET)
    if queue is None:
        raise Http404("No such pair list.")
    return render(request, f"{TEMPLATE}#progress", {"dataset": dataset, "queue": queue,
                                                      "progress": queues.progress(queue, request.user)})


@login_required
@require_POST
def review_submit(request, pk):
    dataset = get_dataset_for(request, pk, Role.REVIEWER, related=QUEUE_RELATED)
    form = VerdictForm(request.POST)
    queue, _filters = _queue(request, dataset, QueryDict(request.POST.get("queue", "")))
    if queue is None:
        raise Http404("No such pair list.")
    pair_id = request.POST.get("pair", "")
    if not pair_id.isdigit():
        raise Http404("No such pair.")
    pair = get_object_or_404(Pair, pk=int(pair_id), dataset=dataset)
    if not form.is_valid():
        assignment = ReviewAssignment.objects.filter(pair=pair, reviewer=request.user).first()
        return _render_item(request, queue, assignment, form, status=400)
    data = form.cleaned_data
    values = queues.review_values(queue, pair, request.user, data["verdict"], data["better_correct"],
                                  data["prompt_ok"], data["note"])
    try:
        # The verdict and the hold on the next pair commit together: one commit (one WAL flush) per submit.
        with transaction.atomic():
            queues.submit(queue, request.user, pair, values)
            following = queues.next_assignment(queue, request.user) if request.htmx else None
    except queues.QueueError as exc:
        return _render_item(request, queue, queues.next_assignment(queue, request.user), notice=str(exc),
                            status=409)
    if not request.htmx:
        return redirect(_queue_url(queue))
    return _render_item(request, queue, following)


@login_required
@require_POST
def review_skip(request, pk):
    dataset = get_dataset_for(request, pk, Role.REVIEWER, related=QUEUE_RELATED)
    form = QueueActionForm(request.POST)
    queue, _filters = _queue(request, dataset, QueryDict(form.data.get("queue", "")))
    if queue is None or not form.is_valid() or not form.cleaned_data["pair"]:
        raise Http404("No such pair in this queue.")
    pair = get_object_or_404(Pair, pk=form.cleaned_data["pair"], dataset=dataset)
    queues.skip(queue, request.user, pair)
    if not request.htmx:
        return redirect(_queue_url(queue))
    return _render_item(request, queue, queues.next_assignment(queue, request.user))


@login_required
@require_POST
def review_undo(request, pk):
    dataset = get_dataset_for(request, pk, Role.REVIEWER, related=QUEUE_RELATED)
    queue, _filters = _queue(request, dataset, QueryDict(request.POST.get("queue", "")))
    if queue is None:
        raise Http404("No such pair list.")
    pair = queues.undo(queue, request.user)
    notice = "" if pair is not None else _("Nothing to undo in this queue.")
    assignment = None
    if pair is not None:
        assignment = ReviewAssignment.objects.filter(pair=pair, reviewer=request.user).first()
        if assignment.status != ReviewAssignment.Status.DONE:
            assignment = None  # the review was deleted: the pair is held again and comes next
    if not request.htmx:
        if notice:
            messages.info(request, notice)
        return redirect(_queue_url(queue, assignment.pk if assignment else None))
    return _render_item(request, queue, assignment or queues.next_assignment(queue, request.user), notice=notice)


@login_required
@require_POST
def review_settings(request, pk):
    dataset = get_dataset_for(request, pk, Role.ADMIN)
    form = ReviewSettingsForm(request.POST, instance=ReviewSettings.of(dataset))
    if form.is_valid():
        with transaction.atomic():
            form.save()
            # A quorum set or changed applies to the reviews already in, at once.
            batch = decisions.apply_review_policy(dataset, user=request.user) if "status_quorum" in form.changed_data \
                else None
        messages.success(request, _("Review settings saved."))
        if batch is not None:
            messages.info(request, _("The reviews decided %(n)s pairs (decision %(pk)s).")
                          % {"n": batch.changed, "pk": batch.pk})
    else:
        messages.error(request, _("Review settings not saved: %(errors)s") % {
            "errors": "; ".join(str(e) for errors in form.errors.values() for e in errors)})
    return redirect(f"{reverse('dataset-detail', args=[dataset.pk])}#review")


def section_context(dataset, user):
    """What the dataset page shows about reviewing: progress, agreement by domain, settings, audits."""
    if not dataset.allows(user, Role.VIEWER):
        return {}
    review_settings = ReviewSettings.of(dataset)
    reviews = Review.objects.filter(dataset=dataset)
    return {
        "can_review": dataset.allows(user, Role.REVIEWER),
        "review_settings": review_settings,
        "review_settings_form": ReviewSettingsForm(instance=review_settings)
        if dataset.allows(user, Role.ADMIN) else None,
        "review_counts": reviews.aggregate(reviews=Count("pk"), pairs=Count("pair", distinct=True)),
        "review_agreement": agreement_by_domain(reviews),
        "audits": Audit.objects.filter(dataset=dataset).select_related("created_by")[:5],
    }


def agreement_by_domain(reviews):
    """Agreement on verdicts per domain over the pairs reviewed more than once."""
    ratings = {}
    for pair_id, domain, reviewer_id, verdict in reviews.values_list("pair_id", "domain", "reviewer_id",
                                                                     "verdict"):
        ratings.setdefault(domain, {}).setdefault(pair_id, {})[reviewer_id] = verdict
    labels = dict(Domain.choices)
    rows = []
    for domain, by_pair in sorted(ratings.items()):
        result = agreement(by_pair)
        if result["pairs"]:
            rows.append({"domain": domain, "label": labels.get(domain, domain), **result})
    return rows
