"""The one place that decides who reaches a dataset and the objects under it.

Outsiders get 404 (a dataset's existence is not disclosed); members whose role is too low get 403.
"""

from django.core.exceptions import PermissionDenied
from django.http import Http404
from django.shortcuts import get_object_or_404

from annotation.models import Dataset, Job, Role


def get_dataset_for(request, pk, role):
    dataset = get_object_or_404(Dataset, pk=pk)
    _require(dataset, request.user, role)
    return dataset


def get_job_for(request, pk, role):
    job = get_object_or_404(Job.objects.select_related("dataset", "created_by"), pk=pk)
    if job.dataset is None:
        if not request.user.is_superuser:
            raise Http404("No such job.")
        return job
    _require(job.dataset, request.user, role)
    return job


def visible_datasets(user):
    if user.is_superuser:
        return Dataset.objects.all()
    return Dataset.objects.filter(memberships__user=user)


def _require(dataset, user, role):
    if dataset.role_of(user) is None:
        raise Http404("No such dataset.")
    if not dataset.allows(user, Role(role)):
        raise PermissionDenied(f"This needs the {role} role in {dataset.name}.")
