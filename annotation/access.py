"""The one place that decides who reaches a dataset and the objects of the pipeline under it (review/access.py
adds review's own objects on top).

Outsiders get 404 (a dataset's existence is not disclosed); members whose role is too low get 403.
"""

from django.core.exceptions import PermissionDenied
from django.db.models import Q
from django.http import Http404
from django.shortcuts import get_object_or_404
from django.utils.translation import gettext as _

from .models import ROLE_RANK, Dataset, Job, Membership, RewardModel, Role


def get_dataset_for(request, pk, role, related=()):
    """The dataset, with the one-to-one rows named in `related` read in the same query."""
    dataset = get_object_or_404(Dataset.objects.select_related(*related), pk=pk)
    require_role(dataset, request.user, role)
    return dataset


def get_job_for(request, pk, role):
    job = get_object_or_404(Job.objects.select_related("dataset", "created_by"), pk=pk)
    if job.dataset is None:
        if not request.user.is_superuser:
            raise Http404("No such job.")
        return job
    require_role(job.dataset, request.user, role)
    return job


def visible_datasets(user):
    if user.is_superuser:
        return Dataset.objects.all()
    return Dataset.objects.filter(memberships__user=user)


def require_role(dataset, user, role):
    """404 for whoever is no member of the dataset, 403 for a member whose role is below `role`."""
    have = dataset.role_of(user)  # once: every page of a dataset pays for this check
    if have is None:
        raise Http404("No such dataset.")
    if ROLE_RANK[have] < ROLE_RANK[Role(role)]:
        # Shown on the 403 page, in the user's language.
        raise PermissionDenied(_("This needs the %(role)s role in %(dataset)s.")
                               % {"role": Role(role).label, "dataset": dataset.name})


def get_reward_model_for(request, pk):
    """A reward model is visible to whoever may see the dataset it was trained on."""
    model = get_object_or_404(RewardModel.objects.select_related("trained_on"), pk=pk)
    if not visible_reward_models(request.user).filter(pk=model.pk).exists():
        raise Http404("No such reward model.")
    return model


def visible_reward_models(user):
    """Models trained on a dataset the user sees; external ones (no training dataset) for everyone. A
    built-in model whose dataset was deleted is left to superusers: its metrics describe that data."""
    if user.is_superuser:
        return RewardModel.objects.all()
    external = Q(trained_on__isnull=True) & ~Q(backend=RewardModel.Backend.BUILTIN)
    return RewardModel.objects.filter(external | Q(trained_on__in=visible_datasets(user)))


def administered_datasets(user):
    """The datasets in which the user has the admin role (every one for a superuser)."""
    if user.is_superuser:
        return Dataset.objects.all()
    return Dataset.objects.filter(memberships__user=user, memberships__role=Role.ADMIN)


# Judges and rubrics are shared by every dataset, and a judge's key is sent to the base URL typed in its
# form: adding or changing them is for staff users (who also create datasets). A dataset admin, who may
# already score a dataset with any judge, sees them and may try one on five responses of that dataset.
def can_change_judges(user):
    return user.is_active and (user.is_staff or user.is_superuser)


def require_judges_access(user, change=False):
    """403 unless the user may see the judges (staff, or admin of a dataset), or change them (staff)."""
    if can_change_judges(user):
        return
    if change:
        raise PermissionDenied(_("Only staff users add or change judges and rubrics."))
    if not administered_datasets(user).exists():
        raise PermissionDenied(_("The judges are for staff users and dataset admins."))


class MembershipKept(Exception):
    """The membership cannot go; the message says why."""


def remove_membership(membership):
    """Remove a member from their dataset, unless they are its last admin: a dataset keeps at least one, so
    that someone can still manage it (the members page and the API both remove through here)."""
    others = Membership.objects.filter(dataset_id=membership.dataset_id, role=Role.ADMIN).exclude(pk=membership.pk)
    if membership.role == Role.ADMIN and not others.exists():
        raise MembershipKept(_("A dataset keeps at least one admin."))
    membership.delete()
