"""One record builder per JSONL format: an ExportPair in, the dict written as one line out (the
metadata columns, when asked, are added after). Each is the exact inverse of the importer's reading
of it (annotation/ingest/formats.py); a pair the format cannot express raises Unrepresentable."""


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
    """TRL standard preference: strings; system and [[query, answer]] history in their own keys."""
    return {
        "prompt": p.turns()[-1]["content"],
        "chosen": p.chosen,
        "rejected": p.rejected,
        "system": p.system(),
        "history": p.history_pairs(),
        "domain": p.domain,
    }


def chat_record(p):
    """TRL conversational preference with an explicit prompt; the same rows OpenRLHF reads with
    --prompt_key prompt --chosen_key chosen --rejected_key rejected --apply_chat_template."""
    return {
        "prompt": [{"role": m["role"], "content": m["content"]} for m in p.messages],
        "chosen": [{"role": "assistant", "content": p.chosen}],
        "rejected": [{"role": "assistant", "content": p.rejected}],
        "domain": p.domain,
    }


def alpaca_record(p):
    """Alpaca ranking as LLaMA-Factory reads it: instruction (the query), input, chosen, rejected."""
    return {
        "instruction": p.turns()[-1]["content"],
        "input": "",
        "chosen": p.chosen,
        "rejected": p.rejected,
        "system": p.system(),
        "history": p.history_pairs(),
        "domain": p.domain,
    }


def llama_factory_dataset_info(dataset, names):
    """The LLaMA-Factory dataset_info.json entries registering the sharegpt ranking file(s)."""
    entry = {
        "formatting": "sharegpt",
        "ranking": True,
        "columns": {"messages": "conversations", "chosen": "chosen", "rejected": "rejected", "system": "system"},
        "tags": {"role_tag": "from", "content_tag": "value", "user_tag": "human", "assistant_tag": "gpt"},
    }
    key = _slug(dataset.name)
    if set(names) == {"all"}:
        return {key: {"file_name": names["all"], **entry}}
    return {f"{key}_{split}": {"file_name": file_name, **entry} for split, file_name in names.items()}


def _slug(name):
    slug = "".join(ch if ch.isalnum() else "_" for ch in name.lower()).strip("_")
    return slug or "dataset"
