"""Record formats: turn one input record (a dict) into a normalised pair or prompt-with-responses.

Every problem raises RowError with a reason a person understands, naming the field.
"""

import uuid
from dataclasses import dataclass, field
from hashlib import blake2b

from ..models import Domain

FORMATS = ("sharegpt", "trl", "alpaca", "crbench", "responses", "prompts")

DOMAIN_ALIASES = {
    Domain.CHAT: ("chat", "对话", "dialogue", "conversation", "general"),
    Domain.CODE: ("code", "代码", "coding", "programming", "编程"),
    Domain.MATH: ("math", "数学", "mathematics", "数学计算"),
    Domain.LOGIC: ("logic", "逻辑推理", "逻辑", "reasoning", "推理"),
    Domain.NOVEL: ("novel", "小说续写", "小说", "novel continuation", "novel_continuation", "story", "续写"),
    Domain.ROLE: ("role", "角色扮演", "roleplay", "role-play", "role_play", "role play"),
}
_DOMAIN_BY_NAME = {alias.casefold(): domain for domain, aliases in DOMAIN_ALIASES.items() for alias in aliases}

SHAREGPT_ROLES = {"system": "system", "human": "user", "user": "user", "gpt": "assistant", "assistant": "assistant"}


class RowError(Exception):
    """A record that cannot be imported; the message says why."""


@dataclass
class PairRecord:
    domain: str
    domain_label: str
    messages: list
    chosen: str
    rejected: str
    chosen_model: str = ""
    rejected_model: str = ""


@dataclass
class ResponsesRecord:
    domain: str
    domain_label: str
    messages: list
    responses: list = field(default_factory=list)  # [(model, text, {judge: score})]


def parse_domain(label):
    """(domain, label) for a domain label in English or Chinese, any case; unknown labels are `other`."""
    if label is None or (isinstance(label, str) and not label.strip()):
        return Domain.OTHER, ""
    text = str(label).strip()
    return _DOMAIN_BY_NAME.get(text.casefold(), Domain.OTHER), text


# Texts are stored and compared exactly as the file has them: whitespace (a code block's indentation)
# and width (２＋２＝？ beside 2+2=?) are content in code and maths, so a normalised key would store a
# later text as an earlier, different one. Only byte-identical texts are one prompt or response.
# blake2b-128 reads ~1 GB/s; the exact text needs no per-text normalisation, which was the importer's
# largest Python cost (NFKC: BENCHMARKS.md, *Ingest*).
def text_key(text):
    """The hash of the exact text as 32 hex digits (the writer's key; PostgreSQL reads it as a uuid)."""
    return blake2b(text.encode(), digest_size=16).hexdigest()


def messages_key(messages):
    return text_key("\x1e".join(f"{m['role']}\x1f{m['content']}" for m in messages))


def text_hash(text):
    """The stored `content_hash` of a response with this text."""
    return uuid.UUID(hex=text_key(text))


def messages_hash(messages):
    """The stored `content_hash` of a prompt with these messages."""
    return uuid.UUID(hex=messages_key(messages))


def detect_format(record):
    if not isinstance(record, dict):
        raise RowError(f"expected a JSON object, got {type(record).__name__}")
    keys = record.keys()
    if "conversations" in keys:
        return "sharegpt"
    if "responses" in keys:
        return "responses"
    if "instruction" in keys:
        return "alpaca"
    if {"chosen", "rejected"} <= keys:
        return "crbench" if "domain" in keys and "prompt" in keys else "trl"
    raise RowError(
        "unknown format: expected keys conversations/chosen/rejected (sharegpt), prompt/chosen/rejected (trl), "
        f"instruction/chosen/rejected (alpaca) or prompt/responses (responses); found {sorted(keys)[:8]}"
    )


def parse_record(record, fmt, *, domain_override=None, max_chars=200_000):
    if not isinstance(record, dict):
        raise RowError(f"expected a JSON object, got {type(record).__name__}")
    parser = {
        "sharegpt": _parse_sharegpt,
        "trl": _parse_trl,
        "crbench": _parse_trl,
        "alpaca": _parse_alpaca,
        "responses": _parse_responses,
        "prompts": _parse_prompts,
    }[fmt]
    parsed = parser(record)
    label = domain_override if domain_override else record.get("domain", record.get("category"))
    parsed.domain, parsed.domain_label = parse_domain(label)
    _check_texts(parsed, max_chars)
    return parsed


def _text(value, name):
    if value is None:
        raise RowError(f"missing field '{name}'")
    if not isinstance(value, str):
        raise RowError(f"field '{name}' must be a string, got {type(value).__name__}")
    if not value.strip():
        raise RowError(f"field '{name}' is empty")
    return value


def _turn(value, name):
    """A response given as a string, a {from, value} turn, or a {role, content} message."""
    if isinstance(value, dict):
        if "value" in value:
            return _text(value["value"], f"{name}.value")
        if "content" in value:
            return _text(value["content"], f"{name}.content")
        raise RowError(f"field '{name}' must have 'value' or 'content'")
    if isinstance(value, list):
        assistant = [m for m in value if isinstance(m, dict) and m.get("role") == "assistant"]
        if not assistant:
            raise RowError(f"field '{name}' has no assistant message")
        return _text(assistant[-1].get("content"), f"{name}[-1].content")
    return _text(value, name)


def _pair(messages, chosen, rejected, chosen_model="", rejected_model=""):
    if chosen == rejected:  # exactly: texts that differ in indentation or width are different answers
        raise RowError("chosen and rejected are identical")
    return PairRecord(Domain.OTHER, "", messages, chosen, rejected, chosen_model, rejected_model)


def _check_conversation(messages, name):
    if not messages or messages[-1]["role"] != "user":
        raise RowError(f"field '{name}' must end with a user (human) turn: that turn is the query")
    return messages


def _parse_sharegpt(record):
    conversations = record.get("conversations")
    if not isinstance(conversations, list) or not conversations:
        raise RowError("field 'conversations' must be a non-empty list of {from, value} turns")
    messages = []
    for i, turn in enumerate(conversations):
        if not isinstance(turn, dict):
            raise RowError(f"conversations[{i}] must be an object with 'from' and 'value'")
        role = SHAREGPT_ROLES.get(str(turn.get("from", "")).lower())
        if role is None:
            raise RowError(f"conversations[{i}].from is {turn.get('from')!r}; expected system, human or gpt")
        messages.append({"role": role, "content": _text(turn.get("value"), f"conversations[{i}].value")})
    # LLaMA-Factory keeps the system prompt in a `system` key as often as in a first system turn.
    if record.get("system") and messages[0]["role"] != "system":
        messages.insert(0, {"role": "system", "content": _text(record["system"], "system")})
    _check_conversation(messages, "conversations")
    return _pair(messages, _turn(record.get("chosen"), "chosen"), _turn(record.get("rejected"), "rejected"))


def _messages(value, name):
    if isinstance(value, str):
        return [{"role": "user", "content": _text(value, name)}]
    if not isinstance(value, list) or not value:
        raise RowError(f"field '{name}' must be a string or a non-empty list of {{role, content}} messages")
    messages = []
    for i, m in enumerate(value):
        if not isinstance(m, dict) or m.get("role") not in ("system", "user", "assistant"):
            raise RowError(f"{name}[{i}] must be a {{role, content}} message with role system, user or assistant")
        messages.append({"role": m["role"], "content": _text(m.get("content"), f"{name}[{i}].content")})
    return _check_conversation(messages, name)


def _parse_trl(record):
    chosen, rejected = record.get("chosen"), record.get("rejected")
    if "prompt" not in record and isinstance(chosen, list) and isinstance(rejected, list):
        # Implicit prompt: both lists hold the whole conversation; the shared prefix is the prompt.
        if len(chosen) < 2 or chosen[:-1] != rejected[:-1]:
            raise RowError("without 'prompt', chosen and rejected must share every message but the last")
        messages = _messages(chosen[:-1], "chosen")
        return _pair(messages, _turn(chosen[-1], "chosen[-1]"), _turn(rejected[-1], "rejected[-1]"))
    messages = _messages(record.get("prompt"), "prompt")
    if isinstance(record.get("prompt"), str) and record.get("history"):
        messages[:0] = _history(record)
    if "system" in record and record["system"] and messages[0]["role"] != "system":
        messages.insert(0, {"role": "system", "content": _text(record["system"], "system")})
    return _pair(messages, _turn(chosen, "chosen"), _turn(rejected, "rejected"))


def _parse_alpaca(record):
    instruction = _text(record.get("instruction"), "instruction")
    extra = record.get("input") or ""
    if not isinstance(extra, str):
        raise RowError(f"field 'input' must be a string, got {type(extra).__name__}")
    messages = []
    if record.get("system"):
        messages.append({"role": "system", "content": _text(record["system"], "system")})
    messages += _history(record)
    messages.append({"role": "user", "content": f"{instruction}\n{extra}" if extra.strip() else instruction})
    if "chosen" in record or "rejected" in record:
        return _pair(messages, _turn(record.get("chosen"), "chosen"), _turn(record.get("rejected"), "rejected"))
    output = record.get("output")
    if not (isinstance(output, list) and len(output) == 2):
        raise RowError("alpaca ranking needs 'chosen' and 'rejected', or 'output' as [chosen, rejected]")
    return _pair(messages, _text(output[0], "output[0]"), _text(output[1], "output[1]"))


def _history(record):
    """Earlier turns given as [[query, answer], …] (LLaMA-Factory's alpaca `history`)."""
    history = record.get("history") or []
    if not isinstance(history, list):
        raise RowError("field 'history' must be a list of [query, answer] pairs")
    messages = []
    for i, turn in enumerate(history):
        if not (isinstance(turn, list) and len(turn) == 2):
            raise RowError(f"history[{i}] must be a [query, answer] pair")
        messages.append({"role": "user", "content": _text(turn[0], f"history[{i}][0]")})
        messages.append({"role": "assistant", "content": _text(turn[1], f"history[{i}][1]")})
    return messages


def _parse_responses(record):
    messages = _messages(record.get("prompt"), "prompt")
    responses = record.get("responses")
    if not isinstance(responses, list) or not responses:
        raise RowError("field 'responses' must be a non-empty list of {model, text, scores}")
    parsed = []
    for i, item in enumerate(responses):
        if not isinstance(item, dict):
            raise RowError(f"responses[{i}] must be an object with 'text'")
        model = item.get("model") or ""
        if not isinstance(model, str):
            raise RowError(f"responses[{i}].model must be a string")
        scores = item.get("scores") or {}
        if not isinstance(scores, dict):
            raise RowError(f"responses[{i}].scores must be an object of judge name to score")
        for judge, score in scores.items():
            if isinstance(score, bool) or not isinstance(score, (int, float)):
                raise RowError(f"responses[{i}].scores.{judge} must be a number, got {score!r}")
            if not 1 <= score <= 10:
                raise RowError(f"responses[{i}].scores.{judge} is {score}, outside the 1-10 scale")
        parsed.append((model, _text(item.get("text"), f"responses[{i}].text"), dict(scores)))
    return ResponsesRecord(Domain.OTHER, "", messages, parsed)


# Prompts only (benchmark questions such as AlignBench's): the first of these fields is the query;
# the domain comes from `domain` or `category` as for every format. No responses, no pairs. Never
# detected: a pair file whose first row lacks `chosen` must not silently import as prompts.
PROMPT_FIELDS = ("prompt", "question", "instruction")


def _parse_prompts(record):
    name = next((f for f in PROMPT_FIELDS if f in record), None)
    if name is None:
        raise RowError(f"a prompts row needs one of the fields {', '.join(PROMPT_FIELDS)}")
    return ResponsesRecord(Domain.OTHER, "", _messages(record[name], name), [])


def _check_texts(parsed, max_chars):
    fields = [(f"messages[{i}]", m["content"]) for i, m in enumerate(parsed.messages)]
    if isinstance(parsed, PairRecord):
        fields += [("chosen", parsed.chosen), ("rejected", parsed.rejected)]
    else:
        fields += [(f"responses[{i}].text", text) for i, (_m, text, _s) in enumerate(parsed.responses)]
    for name, text in fields:
        if "\x00" in text:
            raise RowError(f"field '{name}' contains a NUL byte (\\x00), which PostgreSQL cannot store")
        if len(text) > max_chars:
            raise RowError(f"field '{name}' has {len(text):,} characters, over the limit of {max_chars:,}")
