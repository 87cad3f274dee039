"""Exports: the audited pairs as training files, with a manifest and a dataset card beside them.

One workflow for the web form and `manage.py export_pairs`, by concern:
- selection.py: which pairs (one SQL rule for the files and the counts) and the train/test split;
- stream.py: those pairs out of PostgreSQL by keyset, as ExportPair batches, swapped where a decision or the reviews say so;
- meta.py: the metadata columns (judge scores, gap, reward margin, reviews);
- records.py: one record builder per JSONL format; writers.py: JSONL, CSV and Parquet files;
- formats.py: the registry of formats by name (form, command and job read it);
- job.py: `create_export` and the `export` job that writes the files, the manifest and the card
  (manifest.py).

A new format is a record builder in records.py plus one `register(ExportFormat(...))` in formats.py.
"""

from .formats import FORMATS, ExportFormat, SideFile, file_names, get_format, register, side_file_names
from .job import create_export, write_export
from .selection import ExportError, Selection
from .stream import Unrepresentable

__all__ = [
    "FORMATS", "ExportError", "ExportFormat", "Selection", "SideFile", "Unrepresentable", "create_export",
    "file_names", "get_format", "register", "side_file_names", "write_export",
]
