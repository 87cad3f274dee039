from django.urls import path

from . import judge_views, near_duplicate_views, views
from .reward import views as reward_views

urlpatterns = [
    path("datasets/<int:pk>/import/", views.import_upload, name="import-upload"),
    path("datasets/<int:pk>/score/", views.score_start, name="score-start"),
    path("judges/", judge_views.judge_list, name="judge-list"),
    path("judges/new/", judge_views.judge_create, name="judge-create"),
    path("judges/<int:pk>/", judge_views.judge_edit, name="judge-edit"),
    path("judges/<int:pk>/preview/", judge_views.judge_preview, name="judge-preview"),
    path("rubrics/", judge_views.rubric_list, name="rubric-list"),
    path("rubrics/<str:domain>/", judge_views.rubric_edit, name="rubric-edit"),
    path("jobs/", views.job_list, name="job-list"),
    path("jobs/<int:pk>/", views.job_detail, name="job-detail"),
    path("jobs/<int:pk>/cancel/", views.job_cancel, name="job-cancel"),
    path("jobs/<int:pk>/errors.csv", views.job_errors_csv, name="job-errors-csv"),
    path("datasets/<int:pk>/build-pairs/", views.build_pairs_start, name="build-pairs"),
    path("datasets/<int:pk>/build-runs/", views.build_runs, name="build-runs"),
    path("datasets/<int:pk>/judgements.jsonl", views.judgements_download, name="judgements-download"),
    path("datasets/<int:pk>/reward/train/", reward_views.reward_train, name="reward-train"),
    path("datasets/<int:pk>/reward/leaderboard/", reward_views.reward_leaderboard, name="reward-leaderboard"),
    path("datasets/<int:pk>/reward/pairwise/", reward_views.reward_pairwise, name="reward-pairwise"),
    path("datasets/<int:pk>/reward/<int:model_pk>/what-if/", reward_views.reward_what_if, name="reward-what-if"),
    path("datasets/<int:pk>/reward/<int:model_pk>/score/", reward_views.reward_score, name="reward-score"),
    path("datasets/<int:pk>/reward/<int:model_pk>/apply/", reward_views.reward_apply, name="reward-apply"),
    path("datasets/<int:pk>/reward/<int:model_pk>/unfilter/", reward_views.reward_unfilter, name="reward-unfilter"),
    path("datasets/<int:pk>/near-duplicates/", near_duplicate_views.group_list, name="near-duplicate-groups"),
    path("datasets/<int:pk>/near-duplicates/run/", near_duplicate_views.run_check, name="near-duplicate-run"),
    path("datasets/<int:pk>/contamination/", near_duplicate_views.contamination_list, name="contamination-list"),
]
