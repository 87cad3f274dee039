from django.apps import AppConfig


class ReviewConfig(AppConfig):
    name = "review"
    verbose_name = "Review"

    def ready(self):
        # Modules that register named pair selections (review/selections.py) are imported here,
        # so every list, dashboard and queue sees the whole registry; likewise the modules that declare
        # review's job kinds (annotation.jobs.job_kind), the search indexing that follows every import, and
        # the reward benchmark's gold set of reviewed pairs.
        from . import dashboards, exports, reviewed_gold, search  # noqa: F401
        from . import disagreements  # noqa: F401
        from . import pairwise_views  # noqa: F401
        from . import quality_rules  # noqa: F401
        from . import audits  # noqa: F401
        from . import decisions  # noqa: F401
