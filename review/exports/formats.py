"""The export formats, by name: what the form, the command and the job offer and write.

A format is a writer (writers.py) and, for a JSONL format, a record builder (records.py); a new
JSONL format is one builder plus one `register(ExportFormat(...))` here.
"""

from collections.abc import Callable
from dataclasses import dataclass

from django.utils.translation import gettext_lazy as _

from . import records
from .selection import ExportError
from .writers import CsvWriter, JsonlWriter, ParquetWriter


@dataclass(frozen=True)
class SideFile:
    """A JSON file written beside the data files: `build(dataset, {split: data file name})`."""

    name: str
    kind: str
    build: Callable


@dataclass(frozen=True)
class ExportFormat:
    name: str
    label: str
    writer: type = JsonlWriter
    record: Callable | None = None  # ExportPair -> dict, for JsonlWriter
    extension: str = ".jsonl"
    side_files: tuple = ()


# In the order the export form lists them.
FORMATS: dict[str, ExportFormat] = {}


def register(fmt):
    FORMATS[fmt.name] = fmt
    return fmt


def get_format(name):
    try:
        return FORMATS[name]
    except KeyError:
        raise ExportError(f"unknown format {name!r}; expected one of {', '.join(FORMATS)}") from None


def choices():
    """(name, label) of every format, for a form's ChoiceField."""
    return [(fmt.name, fmt.label) for fmt in FORMATS.values()]


def file_names(fmt, stem, ext=None, split=None):
    """{split or "all": file name} of an export's data files."""
    ext = ext or get_format(fmt).extension
    if split is None:
        return {"all": f"{stem}{ext}"}
    return {"train": f"{stem}_train{ext}", "test": f"{stem}_test{ext}"}


def side_file_names(fmt):
    return ["manifest.json", "README.md"] + [side.name for side in get_format(fmt).side_files]


register(ExportFormat(
    "sharegpt", _("LLaMA-Factory / COIG-P sharegpt ranking (JSONL)"), record=records.sharegpt_record,
    side_files=(SideFile("dataset_info.json", "dataset_info", records.llama_factory_dataset_info),),
))
register(ExportFormat("trl", _("TRL preference, standard (JSONL)"), record=records.trl_record))
register(ExportFormat("trl-chat", _("TRL preference, conversational (JSONL)"), record=records.chat_record))
register(ExportFormat("openrlhf", _("OpenRLHF (JSONL)"), record=records.chat_record))
register(ExportFormat("alpaca", _("Alpaca ranking (JSONL)"), record=records.alpaca_record))
register(ExportFormat("csv", _("CSV"), writer=CsvWriter, extension=".csv"))
register(ExportFormat("parquet", _("Parquet"), writer=ParquetWriter, extension=".parquet"))
