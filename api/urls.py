from django.urls import path, re_path
from drf_spectacular.views import SpectacularAPIView

from . import token_views, views

urlpatterns = [
    path("settings/tokens/", token_views.token_list, name="api-tokens"),
    path("settings/tokens/<int:pk>/revoke/", token_views.token_revoke, name="api-token-revoke"),
    path("api/schema/", SpectacularAPIView.as_view(permission_classes=[]), name="api-schema"),
    path("api/v1/datasets/", views.datasets, name="api-datasets"),
    path("api/v1/datasets/<int:pk>/", views.dataset, name="api-dataset"),
    path("api/v1/datasets/<int:pk>/members/", views.members, name="api-members"),
    path("api/v1/datasets/<int:pk>/members/<str:username>/", views.member, name="api-member"),
    path("api/v1/datasets/<int:pk>/imports/", views.imports, name="api-imports"),
    path("api/v1/datasets/<int:pk>/pairs/", views.pair_list, name="api-pairs"),
    path("api/v1/datasets/<int:pk>/pairs/<int:pair_pk>/", views.pair_detail, name="api-pair"),
    path("api/v1/datasets/<int:pk>/reviews/", views.reviews, name="api-reviews"),
    path("api/v1/datasets/<int:pk>/reviews/next/", views.review_next, name="api-review-next"),
    path("api/v1/datasets/<int:pk>/scoring/", views.scoring, name="api-scoring"),
    path("api/v1/datasets/<int:pk>/pair-builds/", views.pair_builds, name="api-pair-builds"),
    path("api/v1/datasets/<int:pk>/reward-models/", views.reward_models, name="api-reward-models"),
    path("api/v1/datasets/<int:pk>/reward-models/<int:model_pk>/filter/", views.reward_filter,
         name="api-reward-filter"),
    path("api/v1/datasets/<int:pk>/rejudge/", views.rejudge, name="api-rejudge"),
    path("api/v1/datasets/<int:pk>/decisions/", views.decision_list, name="api-decisions"),
    path("api/v1/datasets/<int:pk>/decisions/<int:batch_pk>/", views.decision, name="api-decision"),
    path("api/v1/datasets/<int:pk>/decisions/<int:batch_pk>/undo/", views.decision_undo, name="api-decision-undo"),
    path("api/v1/datasets/<int:pk>/exports/", views.export_create, name="api-exports"),
    path("api/v1/jobs/", views.job_list, name="api-jobs"),
    path("api/v1/jobs/<int:pk>/", views.job, name="api-job"),
    path("api/v1/jobs/<int:pk>/cancel/", views.job_cancel, name="api-job-cancel"),
    path("api/v1/exports/<int:pk>/", views.export, name="api-export"),
    path("api/v1/exports/<int:pk>/files/<str:filename>", views.export_file, name="api-export-file"),
    # Last: any other address under api/ (a negative id, a typo) is a JSON 404 too, not the HTML page.
    re_path(r"^api/", views.not_found),
]
