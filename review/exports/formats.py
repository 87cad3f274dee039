"""The export formats, by name: what the form, the command and the job offer and write.

A format is a writer (writers.py) and, for a JSONL format, a record builder (records.py); a new
JSONL format is one builder plus one `register(ExportFormat(...))` here.
"""

from collections.abc import Callable
from dataclasses import dataclass, replace

from django.utils.translation import gettext_lazy as _

from . import records
from .consumers import FEATURES
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
    # The record keeps the system prompt in a key the format's trainers do not read (counted in the manifest).
    system_unread: bool = False
    help: str = ""  # what the export form says about it: which trainers, what they do not read
    features: list | None = None  # the columns' types for the dataset card (consumers.py)


# In the order the export form lists them.
FORMATS: dict[str, ExportFormat] = {}


def register(fmt):
    if fmt.features is None and fmt.name in FEATURES:  # the built-in formats' types live in consumers.py
        fmt = replace(fmt, features=FEATURES[fmt.name])
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
    side_files=(SideFile("dataset_info.json", "dataset_info", records.llama_factory_dataset_info("sharegpt")),),
    help=_("LLaMA-Factory (dpo, rm): keeps system prompts and earlier turns."),
))
register(ExportFormat(
    "trl", _("TRL preference, standard (JSONL)"), record=records.trl_record, system_unread=True,
    help=_("Plain strings for a model without a chat template: TRL and OpenRLHF do not read the system prompt, "
           "and pairs with earlier turns are skipped. Use TRL conversational to keep both."),
))
register(ExportFormat("trl-chat", _("TRL preference, conversational (JSONL)"), record=records.chat_record,
                      help=_("TRL DPOTrainer and RewardTrainer: system prompt and earlier turns go through the "
                             "chat template.")))
register(ExportFormat("openrlhf", _("OpenRLHF (JSONL)"), record=records.chat_record,
                      help=_("OpenRLHF train_dpo and train_rm with --data.apply_chat_template.")))
register(ExportFormat(
    "alpaca", _("Alpaca ranking (JSONL)"), record=records.alpaca_record,
    side_files=(SideFile("dataset_info.json", "dataset_info", records.llama_factory_dataset_info("alpaca")),),
    help=_("LLaMA-Factory, single-turn pairs only: pairs with earlier turns are skipped (sharegpt keeps them)."),
))
register(ExportFormat("csv", _("CSV"), writer=CsvWriter, extension=".csv",
                      help=_("Spreadsheets and pandas; read every column as text (keep_default_na=False).")))
register(ExportFormat("parquet", _("Parquet"), writer=ParquetWriter, extension=".parquet",
                      help=_("The TRL conversational columns with their types in the file.")))
