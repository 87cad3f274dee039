from django.apps import AppConfig


class AnnotationConfig(AppConfig):
    name = "annotation"
    verbose_name = "Annotation pipeline"

    def ready(self):
        from . import runners  # noqa: F401
