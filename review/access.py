"""Who reaches review's objects (exports, audits): whoever may see their dataset with the role asked for.
The checks for datasets, jobs and reward models live in annotation/access.py and are imported from here."""

from django.shortcuts import get_object_or_404

from annotation.access import (
    get_dataset_for,
    get_job_for,
    get_reward_model_for,
    require_role,
    visible_datasets,
    visible_reward_models,
)

from .models import Audit, Export

__all__ = ["get_audit_for", "get_dataset_for", "get_export_for", "get_job_for", "get_reward_model_for",
           "visible_datasets", "visible_reward_models"]


def get_export_for(request, pk, role):
    export = get_object_or_404(Export.objects.select_related("dataset"), pk=pk)
    require_role(export.dataset, request.user, role)
    return export


def get_audit_for(request, pk, role):
    audit = get_object_or_404(Audit.objects.select_related("dataset", "created_by"), pk=pk)
    require_role(audit.dataset, request.user, role)
    return audit
