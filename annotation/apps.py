from django.apps import AppConfig


class AnnotationConfig(AppConfig):
    name = "annotation"
    verbose_name = "Annotation pipeline"

    def ready(self):
        # The workflow modules declare the job kinds of the pipeline (annotation.jobs.job_kind) and the jobs
        # that follow an import; review's ready() adds its own.
        from . import judging, pairing, rejudging  # noqa: F401
        from .ingest import importer, near_duplicates  # noqa: F401
        from .reward import filtering, pairwise, training  # noqa: F401
