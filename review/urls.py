from django.urls import path

from . import views

urlpatterns = [
    path("", views.dataset_list, name="dataset-list"),
    path("datasets/new/", views.dataset_create, name="dataset-create"),
    path("datasets/<int:pk>/", views.dataset_detail, name="dataset-detail"),
    path("datasets/<int:pk>/members/", views.dataset_members, name="dataset-members"),
    path("datasets/<int:pk>/members/<int:membership_pk>/remove/", views.member_remove, name="member-remove"),
]
