"""What each export format is for, and how its consumers read it: the columns' types (the dataset
card's `dataset_info.features`, so `datasets` never infers a null type from a first block of empty
values), the trainers to use it with, what those trainers do not read, and the exact loading code,
LLaMA-Factory `dataset_info.json` entry and OpenRLHF flags, written into the manifest and the card.

Checked against the consumers' own code: TRL 1.16 (`DPOTrainer`/`RewardTrainer` take `prompt`,
`chosen`, `rejected`, conversational when they are {role, content} lists, and concatenate standard
strings as they are), LLaMA-Factory 0.9.5 (`dataset_info.json` with `ranking`, `formatting`,
`columns`, `tags`) and OpenRLHF 0.11 (`--data.prompt_key`, `--data.chosen_key`, `--data.rejected_key`,
`--data.apply_chat_template`, the `--data.*` names since 0.10.2)."""

import orjson

from .meta import META_FEATURES

STRING = "string"
MESSAGES = [{"name": "role", "dtype": STRING}, {"name": "content", "dtype": STRING}]
TURN = [{"name": "from", "dtype": STRING}, {"name": "value", "dtype": STRING}]


def _strings(*names):
    return [{"name": n, "dtype": STRING} for n in names]


CONVERSATIONAL = [{"name": n, "list": MESSAGES} for n in ("prompt", "chosen", "rejected")] + _strings("domain")

# The data columns of each format, in the order the records write them.
FEATURES = {
    "sharegpt": [{"name": "conversations", "list": TURN}, {"name": "chosen", "struct": TURN},
                 {"name": "rejected", "struct": TURN}] + _strings("system", "domain"),
    "trl": _strings("prompt", "chosen", "rejected", "system", "domain"),
    "trl-chat": CONVERSATIONAL,
    "openrlhf": CONVERSATIONAL,
    "alpaca": _strings("instruction", "input", "chosen", "rejected", "system", "domain"),
    "csv": _strings("domain", "system", "history", "prompt", "chosen", "rejected"),
    "parquet": CONVERSATIONAL,
}

# Which format to pick for which trainer (README "Exports" says the same).
PICK = [
    ("LLaMA-Factory (stage dpo, rm)", "sharegpt (system prompts and earlier turns kept); alpaca for single-turn pairs"),
    ("TRL DPOTrainer, RewardTrainer", "trl-chat or parquet (the chat template renders system prompt and earlier turns); "
                                      "trl only for a model without a chat template"),
    ("OpenRLHF train_dpo, train_rm", "openrlhf, with --data.apply_chat_template"),
    ("spreadsheets, pandas", "csv (read every column as text: keep_default_na=False)"),
]

LOSES = {
    "trl": ("TRL's and OpenRLHF's trainers read only prompt, chosen and rejected: the system prompt, kept in "
            "`system` for re-importing, is not seen in training, and pairs with earlier turns are not in this "
            "file. To train with both, export trl-chat (TRL), openrlhf (OpenRLHF) or sharegpt (LLaMA-Factory). "
            "`chosen` and `rejected` start with a newline, the separator between prompt and completion that TRL's "
            "standard format expects (its trainers join `prompt + chosen` as they are)."),
    "alpaca": ("Pairs with earlier turns are not in this file (a history column would be empty in most rows, "
               "which loaders cannot type). To keep them, export sharegpt for LLaMA-Factory."),
    "csv": ("CSV has no types: read every column as text, or `datasets` and pandas turn an empty system prompt "
            "and texts such as \"None\" or \"NA\" into nulls and an empty history column into numbers."),
}


def features(fmt, with_meta):
    """The card's `dataset_info.features` of an export of `fmt` (an ExportFormat): its data columns,
    then the metadata columns (as text in a CSV file, whose cells have no types); None for a format
    registered without features."""
    if fmt.features is None:
        return None
    meta = []
    if with_meta:
        meta = _strings(*(f["name"] for f in META_FEATURES)) if fmt.extension == ".csv" else META_FEATURES
    return list(fmt.features) + meta


def llama_factory_entry(fmt):
    """The LLaMA-Factory dataset_info.json entry (without file_name) for a format it reads."""
    if fmt == "sharegpt":
        return {"formatting": "sharegpt", "ranking": True,
                "columns": {"messages": "conversations", "chosen": "chosen", "rejected": "rejected", "system": "system"},
                "tags": {"role_tag": "from", "content_tag": "value", "user_tag": "human", "assistant_tag": "gpt"}}
    if fmt == "alpaca":
        return {"formatting": "alpaca", "ranking": True,
                "columns": {"prompt": "instruction", "query": "input", "chosen": "chosen", "rejected": "rejected",
                            "system": "system"}}
    return None


def _data_files(files):
    by_split = {("train" if f["split"] == "all" else f["split"]): f["name"] for f in files}
    return "{" + ", ".join(f'"{split}": "{name}"' for split, name in by_split.items()) + "}"


def snippets(fmt, with_meta, files, dataset_key):
    """[(consumer, language, code)] to read this export; `files` are the manifest's data files."""
    data_files = _data_files(files)
    builder = {"csv": "csv", "parquet": "parquet"}.get(fmt, "json")
    out = []
    if with_meta and fmt != "parquet":
        out.append(("datasets (with the metadata columns: the card's features)", "python",
                    "from datasets import load_dataset\n\n"
                    "# the folder holding this README.md: its configs and dataset_info.features type every column\n"
                    "ds = load_dataset(\"path/to/this/folder\"" + (", keep_default_na=False" if fmt == "csv" else "")
                    + ")"))
    else:
        extra = ", keep_default_na=False" if fmt == "csv" else ""
        out.append(("datasets", "python",
                    f"from datasets import load_dataset\n\nds = load_dataset(\"{builder}\", data_files={data_files}{extra})"))
    if fmt == "csv":
        out.append(("pandas", "python", "import pandas as pd\n\n"
                    f"df = pd.read_csv(\"{files[0]['name']}\", dtype=str, keep_default_na=False)"))
    if fmt in ("trl", "trl-chat", "parquet", "openrlhf"):
        out.append(("TRL DPOTrainer / RewardTrainer", "python",
                    "from datasets import load_dataset\nfrom trl import DPOConfig, DPOTrainer  # or RewardConfig, RewardTrainer\n\n"
                    f"ds = load_dataset(\"{builder}\", data_files={data_files})\n"
                    "trainer = DPOTrainer(model=model, args=DPOConfig(output_dir=\"dpo\"), processing_class=tokenizer,\n"
                    "                     train_dataset=ds[\"train\"]" + (", eval_dataset=ds[\"test\"]" if len(files) > 1 else "")
                    + ")\ntrainer.train()"))
    if fmt in ("openrlhf", "trl-chat", "trl"):
        chat = fmt != "trl"
        for module in ("train_dpo", "train_rm"):
            out.append((f"OpenRLHF {module}", "bash",
                        f"deepspeed --module openrlhf.cli.{module} --model.model_name_or_path MODEL \\\n"
                        f"    --data.dataset {files[0]['name']} \\\n"
                        "    --data.prompt_key prompt --data.chosen_key chosen --data.rejected_key rejected"
                        + (" \\\n    --data.apply_chat_template" if chat else "")))
    entry = llama_factory_entry(fmt)
    if entry:
        entries = {(dataset_key if f["split"] == "all" else f"{dataset_key}_{f['split']}"): {"file_name": f["name"], **entry}
                   for f in files}
        out.append(("LLaMA-Factory dataset_info.json (written beside the data as dataset_info.json)", "json",
                    orjson.dumps(entries, option=orjson.OPT_INDENT_2).decode()))
        keys = list(entries)
        datasets = f"dataset: {keys[0]}" + (f"\neval_dataset: {keys[1]}" if len(keys) > 1 else "")
        out.append(("LLaMA-Factory training config (YAML)", "yaml",
                    f"stage: dpo            # or rm\n{datasets}\ndataset_dir: path/to/this/folder\n"
                    "template: TEMPLATE    # the model's chat template in LLaMA-Factory"))
    return out
