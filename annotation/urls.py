from django.urls import path

from . import views

urlpatterns = [
    path("datasets/<int:pk>/import/", views.import_upload, name="import-upload"),
    path("jobs/", views.job_list, name="job-list"),
    path("jobs/<int:pk>/", views.job_detail, name="job-detail"),
    path("jobs/<int:pk>/cancel/", views.job_cancel, name="job-cancel"),
    path("jobs/<int:pk>/errors.csv", views.job_errors_csv, name="job-errors-csv"),
]
