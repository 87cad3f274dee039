"""Registers every job kind with the job framework: importing this module is enough."""

from . import judging, pairing  # noqa: F401
from .ingest import importer, near_duplicates  # noqa: F401
from .reward import filtering, pairwise, training  # noqa: F401
from review import dashboards, exports, quality_rules, search  # noqa: F401,E402
