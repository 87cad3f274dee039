"""Registers every job kind with the job framework: importing this module is enough."""

from .ingest import importer  # noqa: F401
