from django.contrib import messages
from django.contrib.auth import views as auth_views
from django.contrib.auth.decorators import login_required
from django.core.exceptions import PermissionDenied
from django.db import transaction
from django.db.models import Count
from django.http import FileResponse, Http404
from django.shortcuts import get_object_or_404, redirect, render
from django.urls import reverse_lazy
from django.urls import reverse
from django.utils.translation import gettext as _
from django.utils.translation import gettext_lazy
from django.views.decorators.http import require_GET, require_http_methods, require_POST

from annotation.access import MembershipKept, remove_membership
from annotation.forms import BuildPairsForm, ImportForm
from annotation.ingest import near_duplicates
from annotation.models import Domain, Job, Membership, Pair, PairBuildRun, Prompt, Response, Role
from annotation.reward.views import section_context as reward_section_context

from . import dashboards, exports, invitations, members
from .access import get_dataset_for, get_export_for, visible_datasets
from .forms import DatasetForm, ExportForm, MemberForm, NewMemberForm, UserSearchForm
from .models import DashboardSnapshot, Export
from .queue_views import section_context as review_section_context


@login_required
@require_GET
def dataset_list(request):
    datasets = visible_datasets(request.user).annotate(n_pairs=Count("pairs", distinct=True))
    form = DatasetForm() if request.user.is_staff else None
    return render(request, "review/dataset_list.html", {"datasets": datasets, "form": form})


@login_required
@require_POST
def dataset_create(request):
    if not request.user.is_staff:
        raise PermissionDenied(_("Only staff users create datasets."))
    form = DatasetForm(request.POST)
    if not form.is_valid():
        datasets = visible_datasets(request.user)
        return render(request, "review/dataset_list.html", {"datasets": datasets, "form": form}, status=400)
    with transaction.atomic():
        dataset = form.save(commit=False)
        dataset.created_by = request.user
        dataset.save()
        Membership.objects.create(dataset=dataset, user=request.user, role=Role.ADMIN)
    return redirect("dataset-detail", dataset.pk)


@login_required
@require_GET
def dataset_detail(request, pk):
    dataset = get_dataset_for(request, pk, Role.VIEWER)
    return render(request, "review/dataset_detail.html", _detail_context(request, dataset))


def _detail_context(request, dataset, export_form=None):
    is_admin = dataset.allows(request.user, Role.ADMIN)
    can_export = dataset.allows(request.user, Role.REVIEWER)
    return {
        "dataset": dataset,
        "role": dataset.role_of(request.user),
        "is_admin": is_admin,
        **dataset_counts(dataset),
        "jobs": Job.objects.filter(dataset=dataset).select_related("created_by")[:10],
        "import_form": ImportForm() if is_admin else None,
        "build_form": BuildPairsForm.for_dataset(dataset) if is_admin else None,
        "build_runs": PairBuildRun.objects.filter(dataset=dataset).select_related("job")[:5],
        **reward_section_context(dataset, request.user),
        "export_form": (export_form or ExportForm()) if can_export else None,
        "exports": Export.objects.filter(dataset=dataset).select_related("job")[:10],
        "nd": near_duplicates.summary(dataset),
        **review_section_context(dataset, request.user),
        "pipeline": pipeline_steps(dataset),
    }


# The pipeline's steps in order: (name, label, job kinds whose newest job is the step's state, the admin's action).
PIPELINE = [
    ("score", gettext_lazy("Score responses with the LLM judges"), ["score"], "score-start", gettext_lazy("Score responses")),
    ("build", gettext_lazy("Build pairs from the judges' scores"), ["build_pairs"], "#pair-building", gettext_lazy("Build pairs")),
    ("reward", gettext_lazy("Train or load a reward model"), ["train_reward_model"], "reward-train", gettext_lazy("Train a reward model")),
    ("filter", gettext_lazy("Filter pairs by reward margin"), ["reward_filter"], "#reward-models", gettext_lazy("Reward models")),
]


def pipeline_steps(dataset):
    """Each step of the pipeline with the newest job of its kinds (None: not run yet) and the admin's action."""
    steps = []
    for name, label, kinds, action, action_label in PIPELINE:
        job = Job.objects.filter(dataset=dataset, kind__in=kinds).order_by("-created_at", "-pk").first()
        url = action if action.startswith("#") else reverse(action, args=[dataset.pk])
        steps.append({"name": name, "label": label, "job": job, "action": url, "action_label": action_label})
    return steps


def dataset_counts(dataset):
    """Prompts, responses and pairs by domain, and pairs by status. Counting a million pairs and their
    texts takes about a second, so they come from the overview's snapshot (review/dashboards.py) while no
    job that may change the data has finished since it was computed or is under way (`counted_at` says
    when); they are counted live otherwise."""
    snap = DashboardSnapshot.objects.filter(dataset=dataset, name="overview").first()
    if (snap is not None and "prompts_by_domain" in snap.data and members.unchanged_since(dataset, snap.computed_at)
            and not dashboards.decided_since(dataset, snap.computed_at)):
        data = snap.data
        prompts, responses = data["prompts_by_domain"], data["responses_by_domain"]
        pairs = {row["domain"]: row["total"] for row in data["domains"]}
        statuses, counted_at = data["total"], snap.computed_at
    else:
        prompts = dict(Prompt.objects.filter(dataset=dataset).values_list("domain").annotate(n=Count("*")))
        pairs = dict(Pair.objects.filter(dataset=dataset).values_list("domain").annotate(n=Count("*")))
        responses = dict(
            Response.objects.filter(dataset=dataset).values_list("prompt__domain").annotate(n=Count("*")))
        statuses = dict(Pair.objects.filter(dataset=dataset).values_list("status").annotate(n=Count("*")))
        counted_at = None
    rows = [
        {"domain": d, "label": label, "prompts": prompts.get(d, 0), "responses": responses.get(d, 0),
         "pairs": pairs.get(d, 0)}
        for d, label in Domain.choices
    ]
    total = {k: sum(r[k] for r in rows) for k in ("prompts", "responses", "pairs")}
    return {"domains": {"rows": [r for r in rows if r["prompts"] or r["pairs"]], "total": total},
            "statuses": [{"status": s, "label": label, "n": statuses.get(s, 0)} for s, label in Pair.Status.choices],
            "counted_at": counted_at}


@login_required
@require_http_methods(["GET", "POST"])
def dataset_members(request, pk):
    dataset = get_dataset_for(request, pk, Role.ADMIN)
    form = MemberForm(request.POST or None, initial={"username": request.GET.get("add", "")})
    if request.method == "POST":
        if form.is_valid():
            Membership.objects.update_or_create(
                dataset=dataset, user=form.cleaned_data["username"], defaults={"role": form.cleaned_data["role"]}
            )
            messages.success(request, _("Membership saved."))
            return redirect("dataset-members", dataset.pk)
    return _members_page(request, dataset, form=form)


@login_required
@require_POST
def member_create(request, pk):
    """A dataset admin creates an account that joins as reviewer or viewer (review/invitations.py's rule)
    and gets the link where its owner sets a password, shown once."""
    dataset = get_dataset_for(request, pk, Role.ADMIN)
    new_form = NewMemberForm(request.POST)
    if not new_form.is_valid():
        return _members_page(request, dataset, new_form=new_form)
    data = new_form.cleaned_data
    user, path = invitations.create_member(dataset, username=data["username"], role=data["role"],
                                           name=data["name"], email=data["email"])
    return _members_page(request, dataset, invited={"user": user, "link": request.build_absolute_uri(path)})


def _members_page(request, dataset, form=None, new_form=None, invited=None):
    search = UserSearchForm(request.GET if "q" in request.GET else None)
    found = invitations.search_users(search.cleaned_data["q"]) if search.is_bound and search.is_valid() else None
    members = dataset.memberships.select_related("user").order_by("user__username")
    member_ids = {m.user_id for m in members}
    form, new_form = form or MemberForm(), new_form or NewMemberForm()
    return render(request, "review/members.html", {
        "dataset": dataset, "members": members, "form": form, "new_form": new_form, "search": search,
        "found": None if found is None else [(u, u.pk in member_ids) for u in found], "invited": invited,
    }, status=400 if form.errors or new_form.errors else 200)


@login_required
@require_POST
def member_remove(request, pk, membership_pk):
    dataset = get_dataset_for(request, pk, Role.ADMIN)
    membership = get_object_or_404(Membership, pk=membership_pk, dataset=dataset)
    try:
        remove_membership(membership)
    except MembershipKept as refused:
        messages.error(request, str(refused))
        return redirect("dataset-members", dataset.pk)
    messages.success(request, _("Member removed."))
    return redirect("dataset-members", dataset.pk)


class InviteAccept(auth_views.PasswordResetConfirmView):
    """Where a person a dataset admin created an account for sets their password (the link is a
    password-reset token: one use, PASSWORD_RESET_TIMEOUT)."""

    template_name = "registration/invite_accept.html"
    success_url = reverse_lazy("login")

    def form_valid(self, form):
        messages.success(self.request, _("Your password is set. Log in with it."))
        return super().form_valid(form)


# Reviewers and admins export: reviewers are the people who audit a dataset and train on the result.
@login_required
@require_POST
def export_create(request, pk):
    dataset = get_dataset_for(request, pk, Role.REVIEWER)
    form = ExportForm(request.POST)
    if form.is_valid():
        try:
            export = exports.create_export(dataset, form.cleaned_data["format"], form.selection(), user=request.user)
            return redirect("job-detail", export.job.pk)
        except exports.ExportError as exc:
            form.add_error(None, str(exc))
    return render(request, "review/dataset_detail.html", _detail_context(request, dataset, form), status=400)


@login_required
@require_GET
def export_download(request, pk, filename):
    export = get_export_for(request, pk, Role.VIEWER)
    path = export.file_named(filename)
    if path is None or not path.is_file():
        raise Http404("No such file in this export.")
    return FileResponse(open(path, "rb"), as_attachment=True, filename=filename)
