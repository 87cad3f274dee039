"""One record builder per JSONL format: an ExportPair in, the dict written as one line out (the
metadata columns, when asked, are added after). Each is the inverse of the importer's reading of it
(annotation/ingest/formats.py); a pair the format cannot express raises Unrepresentable.

Every key of a record has one JSON type in every row, never null and never an empty list: loaders
(`datasets`, and through it TRL, LLaMA-Factory and OpenRLHF) infer each column's type from the first
block of the file (10 MB) and fail on a later row that does not cast to it ("Couldn't cast array of
type list<item: string> to null"); a key missing from the whole first block fails the same way. So
the formats whose shape has no room for earlier turns skip such pairs instead of writing `[]`."""

from .consumers import llama_factory_entry
from .stream import Unrepresentable

# TRL's standard format concatenates prompt and completion strings as they are (`prompt + chosen`), so
# the completion carries the separator, as in TRL's own example ("The sky is" / " blue.").
TRL_SEPARATOR = "\n"
HISTORY_UNREPRESENTABLE = "has earlier turns, which this format cannot hold (sharegpt, trl-chat, openrlhf, parquet can)"


def sharegpt_record(p):
    """LLaMA-Factory sharegpt ranking: conversations (human/gpt), chosen/rejected turns, system."""
    conversations = [{"from": "human" if m["role"] == "user" else "gpt", "value": m["content"]} for m in p.turns()]
    return {
        "conversations": conversations,
        "chosen": {"from": "gpt", "value": p.chosen},
        "rejected": {"from": "gpt", "value": p.rejected},
        "system": p.system(),
        "domain": p.domain,
    }


def trl_record(p):
    """TRL standard preference: strings, the completions starting with TRL_SEPARATOR. The system prompt
    is kept in `system` (always a string), which TRL's and OpenRLHF's trainers do not read."""
    return {
        "prompt": _single_turn(p),
        "chosen": TRL_SEPARATOR + p.chosen,
        "rejected": TRL_SEPARATOR + p.rejected,
        "system": p.system(),
        "domain": p.domain,
    }


def chat_record(p):
    """TRL conversational preference with an explicit prompt (system turn and history included); the
    same rows OpenRLHF reads with --data.prompt_key prompt --data.apply_chat_template (consumers.py)."""
    return {
        "prompt": [{"role": m["role"], "content": m["content"]} for m in p.messages],
        "chosen": [{"role": "assistant", "content": p.chosen}],
        "rejected": [{"role": "assistant", "content": p.rejected}],
        "domain": p.domain,
    }


def alpaca_record(p):
    """Alpaca ranking as LLaMA-Factory reads it: instruction (the query), input, chosen, rejected, system."""
    return {
        "instruction": _single_turn(p),
        "input": "",
        "chosen": p.chosen,
        "rejected": p.rejected,
        "system": p.system(),
        "domain": p.domain,
    }


def _single_turn(p):
    """The query of a pair without earlier turns: a `history` column would be `[]` in most rows."""
    turns = p.turns()
    if len(turns) > 1:
        raise Unrepresentable(HISTORY_UNREPRESENTABLE)
    return turns[0]["content"]


def llama_factory_dataset_info(fmt):
    """A side-file builder: the LLaMA-Factory dataset_info.json entries registering the file(s) of `fmt`."""
    entry = llama_factory_entry(fmt)

    def build(dataset, names):
        key = dataset_key(dataset.name)
        if set(names) == {"all"}:
            return {key: {"file_name": names["all"], **entry}}
        return {f"{key}_{split}": {"file_name": file_name, **entry} for split, file_name in names.items()}

    return build


def dataset_key(name):
    """The dataset's name as a LLaMA-Factory dataset_info.json key."""
    slug = "".join(ch if ch.isalnum() else "_" for ch in name.lower()).strip("_")
    return slug or "dataset"
