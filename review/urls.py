from django.urls import path

from . import audit_views, dashboard_views, decision_views, pair_views, pairwise_views, queue_views, reviewer_views, views

urlpatterns = [
    path("", views.dataset_list, name="dataset-list"),
    path("datasets/new/", views.dataset_create, name="dataset-create"),
    path("datasets/<int:pk>/", views.dataset_detail, name="dataset-detail"),
    path("datasets/<int:pk>/members/", views.dataset_members, name="dataset-members"),
    path("datasets/<int:pk>/members/new/", views.member_create, name="member-create"),
    path("invite/<uidb64>/<token>/", views.InviteAccept.as_view(), name="invite-accept"),
    path("datasets/<int:pk>/members/<int:membership_pk>/remove/", views.member_remove, name="member-remove"),
    path("datasets/<int:pk>/export/", views.export_create, name="export-create"),
    path("exports/<int:pk>/<str:filename>", views.export_download, name="export-download"),
    path("datasets/<int:pk>/overview/", dashboard_views.overview, name="dataset-overview"),
    path("datasets/<int:pk>/disagreements/", dashboard_views.disagreements, name="disagreements"),
    path("datasets/<int:pk>/judges/", dashboard_views.judge_list, name="judge-analysis"),
    path("datasets/<int:pk>/judges/<int:judge_pk>/", dashboard_views.judge_detail, name="judge-detail"),
    path("datasets/<int:pk>/dashboards/refresh/", dashboard_views.refresh, name="dashboard-refresh"),
    path("datasets/<int:pk>/pairs/", pair_views.pair_list, name="pair-list"),
    path("datasets/<int:pk>/pairs/saved/", pair_views.saved_filter_save, name="saved-filter-save"),
    path("datasets/<int:pk>/pairs/saved/<int:filter_pk>/delete/", pair_views.saved_filter_delete,
         name="saved-filter-delete"),
    path("datasets/<int:pk>/pairs/search-index/", pair_views.search_index_start, name="search-index"),
    path("datasets/<int:pk>/pairs/rejudge/", pairwise_views.rejudge_start, name="pairwise-rejudge"),
    path("datasets/<int:pk>/pairs/<int:pair_pk>/", pair_views.pair_detail, name="pair-detail"),
    path("datasets/<int:pk>/pairs/<int:pair_pk>/rescore/", pair_views.pair_rescore, name="pair-rescore"),
    path("datasets/<int:pk>/pairs/<int:pair_pk>/unfilter/", pair_views.pair_unfilter, name="pair-unfilter"),
    path("datasets/<int:pk>/pairs/<int:pair_pk>/rebuild/", pair_views.pair_rebuild, name="pair-rebuild"),
    path("datasets/<int:pk>/quality/", pair_views.quality_overview, name="quality-rules"),
    path("datasets/<int:pk>/quality/count/", pair_views.quality_recount, name="quality-recount"),
]

# The review queue and audits.

urlpatterns += [
    path("datasets/<int:pk>/review/", queue_views.queue_page, name="review-queue"),
    path("datasets/<int:pk>/review/progress/", queue_views.queue_progress, name="review-progress"),
    path("datasets/<int:pk>/review/submit/", queue_views.review_submit, name="review-submit"),
    path("datasets/<int:pk>/review/skip/", queue_views.review_skip, name="review-skip"),
    path("datasets/<int:pk>/review/undo/", queue_views.review_undo, name="review-undo"),
    path("datasets/<int:pk>/review/settings/", queue_views.review_settings, name="review-settings"),
    path("datasets/<int:pk>/reviewers/", reviewer_views.reviewer_statistics, name="reviewer-stats"),
    path("datasets/<int:pk>/audits/", audit_views.audit_list, name="audit-list"),
    path("datasets/<int:pk>/audits/new/", audit_views.audit_create, name="audit-create"),
    path("audits/<int:pk>/", audit_views.audit_detail, name="audit-detail"),
    path("audits/compare/", audit_views.audit_compare, name="audit-compare"),
]

# Decisions on pairs: keep, discard, swap; recorded and undone (review/decisions.py).

urlpatterns += [
    path("datasets/<int:pk>/decisions/", decision_views.decision_list, name="decision-list"),
    path("datasets/<int:pk>/decisions/new/", decision_views.decide, name="decide"),
    path("datasets/<int:pk>/decisions/<int:batch_pk>/", decision_views.decision_detail, name="decision-detail"),
    path("datasets/<int:pk>/decisions/<int:batch_pk>/undo/", decision_views.decision_undo, name="decision-undo"),
]
