"""Record formats: turn one input record (a dict) into a normalised pair or prompt-with-responses.

Every problem raises RowError with a reason a person understands, naming the field.
"""

import difflib
import uuid
from dataclasses import dataclass, field
from hashlib import blake2b

from ..models import Domain

# Ours, then other tools' (foreign_formats.py).
FORMATS = ("sharegpt", "trl", "alpaca", "crbench", "responses", "prompts",
           "argilla", "labelstudio", "ultrafeedback", "hh-rlhf")

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
    # Scores that came with the pair (UltraFeedback-binarized `score_chosen`): {judge: score}.
    chosen_scores: dict = field(default_factory=dict)
    rejected_scores: dict = field(default_factory=dict)


@dataclass
class ResponsesRecord:
    domain: str
    domain_label: str
    messages: list
    responses: list = field(default_factory=list)  # [(model, text, {judge: score})]
    # Why responses of the row were left out (an empty generation, a bad score): the import lists
    # them with the row's line and keeps the row's other responses.
    dropped: list = field(default_factory=list)


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
    return utf8_key(text.encode())


def utf8_key(data):
    """`text_key` of the text whose UTF-8 encoding is `data` (the writer encodes each text once, for the hash
    and for COPY)."""
    return blake2b(data, digest_size=16).hexdigest()


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
    foreign = foreign_formats.detect(record)
    if foreign:
        return foreign
    keys = record.keys()
    if "conversations" in keys:
        return "sharegpt"
    if "responses" in keys:
        return "responses"
    if "instruction" in keys:
        return "alpaca"
    if {"chosen", "rejected"} <= keys:
        return "crbench" if "domain" in keys and "prompt" in keys else "trl"
    raise RowError(unknown_format_reason(record))


# The fields that make each format, for telling a user which one their record comes closest to.
FORMAT_FIELDS = {
    "sharegpt": ("conversations", "chosen", "rejected"),
    "trl": ("prompt", "chosen", "rejected"),
    "crbench": ("prompt", "chosen", "rejected", "domain"),
    "alpaca": ("instruction", "input", "chosen", "rejected"),
    "responses": ("prompt", "responses"),
    "argilla": ("fields", "responses", "suggestions"),
    "labelstudio": ("data", "annotations"),
    "ultrafeedback": ("instruction", "completions"),
    "hh-rlhf": ("chosen", "rejected"),
}


# The fields a column mapping (--columns FIELD=COLUMN) may name.
MAPPABLE_FIELDS = (
    "prompt", "query", "system", "history", "chosen", "rejected", "domain", "model", "text", "scores",
    "conversations", "instruction", "input", "output", "responses", "completions",
)

# Names other files give our fields; a record with `question` and `answer` is closest to trl.
FIELD_SYNONYMS = {
    "prompt": ("question", "query", "instruction", "input", "text", "user", "context", "problem"),
    "chosen": ("good", "better", "preferred", "winner", "positive", "accepted", "answer", "response", "output"),
    "rejected": ("bad", "worse", "dispreferred", "loser", "negative", "refused"),
    "responses": ("outputs", "completions", "generations", "answers", "candidates"),
    "conversations": ("messages", "dialog", "dialogue", "history", "turns"),
    "domain": ("category", "type", "subject", "task"),
    "instruction": ("prompt", "question", "query"),
    "completions": ("responses", "outputs", "generations"),
    "data": ("task",),
    "annotations": ("labels", "result", "results"),
}


def _field_match(wanted, keys):
    """(how well, the key) for one field the format wants among the record's keys: the field itself,
    a usual other name of it, or a close spelling (Chosen, chosen_response)."""
    if wanted in keys:
        return 1.0, wanted
    folded = {k.casefold().replace("-", "_"): k for k in keys}
    if wanted in folded:
        return 1.0, folded[wanted]
    for synonym in FIELD_SYNONYMS.get(wanted, ()):
        if synonym in folded:
            return 0.8, folded[synonym]
    best = max(((difflib.SequenceMatcher(None, wanted, k).ratio(), k) for k in folded), default=(0, None))
    return (best[0], folded[best[1]]) if best[0] >= 0.75 else (0.0, None)


def unknown_format_reason(record):
    """Why a record is in no known format: the fields it has, the closest format, and a mapping to try."""
    keys = [str(k) for k in record]
    shown = ", ".join(keys[:20]) + (f" and {len(keys) - 20} more" if len(keys) > 20 else "")
    scored = []
    for order, (fmt, wanted) in enumerate(FORMAT_FIELDS.items()):
        matches = {w: _field_match(w, keys) for w in wanted}
        scored.append((sum(m[0] for m in matches.values()) / len(wanted), -order, fmt, matches))
    likeness, _order, closest, matches = max(scored)
    if likeness < 0.3:
        return (f"unknown format: the record's fields are {shown or 'none'}; no known format is close "
                "(trl needs prompt, chosen, rejected; see the README's list of formats)")
    mapping = ",".join(f"{w}={key}" for w, (score, key) in matches.items()
                       if key and key != w and w in MAPPABLE_FIELDS)
    missing = [w for w, (score, key) in matches.items() if key is None]
    return (f"unknown format: the record's fields are {shown}; the closest known format is {closest} "
            f"({', '.join(FORMAT_FIELDS[closest])})"
            + (f", which also needs {', '.join(missing)}" if missing else "")
            + (f"; try --columns {mapping}" if mapping else ""))


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
        **foreign_formats.PARSERS,
    }[fmt]
    try:
        parsed = parser(record)
    except (TypeError, AttributeError, KeyError, ValueError) as exc:
        # Other tools' records nest deeply; a shape no check above foresaw is this row's problem, not the job's.
        if fmt not in foreign_formats.PARSERS:
            raise
        raise RowError(f"not a well-formed {fmt} record ({type(exc).__name__}: {exc})") from None
    # Formats that keep the domain elsewhere (Argilla's metadata, Label Studio's data) leave it in domain_label.
    label = domain_override or record.get("domain", record.get("category")) or parsed.domain_label
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
    pair = _trl_pair(record)
    pair.chosen_scores, pair.rejected_scores = foreign_formats.binarized_scores(record)
    pair.chosen_model = _model(record, "chosen")
    pair.rejected_model = _model(record, "rejected")
    return pair


def _trl_pair(record):
    chosen, rejected = record.get("chosen"), record.get("rejected")
    if "prompt" not in record:
        # Implicit prompt (TRL): chosen and rejected each hold the whole conversation; the shared beginning
        # is the prompt.
        if isinstance(chosen, list) and isinstance(rejected, list):
            return foreign_formats.implicit_prompt_pair(chosen, rejected)
        if foreign_formats.is_hh_transcript(chosen):
            return foreign_formats.parse_hh_rlhf(record)
        if isinstance(chosen, str) and isinstance(rejected, str):
            return foreign_formats.implicit_text_pair(_text(chosen, "chosen"), _text(rejected, "rejected"))
        if chosen is None or rejected is None:
            raise RowError(f"missing field '{'chosen' if chosen is None else 'rejected'}'")
        raise RowError("without 'prompt', chosen and rejected must both be texts or both lists of "
                       f"{{role, content}} messages; got {type(chosen).__name__} and {type(rejected).__name__}")
    messages = _messages(record.get("prompt"), "prompt")
    if isinstance(record.get("prompt"), str) and record.get("history"):
        messages[:0] = _history(record)
    if "system" in record and record["system"] and messages[0]["role"] != "system":
        messages.insert(0, {"role": "system", "content": _text(record["system"], "system")})
    return _pair(messages, _turn(chosen, "chosen"), _turn(rejected, "rejected"))


def _model(record, side):
    """The generator of a side, where the file names it (`chosen_model`, Argilla's `chosen-model`)."""
    model = record.get(f"{side}_model") or record.get(f"{side}-model") or ""
    return model if isinstance(model, str) else ""


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
    parsed, dropped = [], []
    for i, item in enumerate(responses):
        try:
            parsed.append(_response(item, i))
        except RowError as exc:
            dropped.append(str(exc))
    return foreign_formats.responses_with_dropped(messages, parsed, dropped)


def _response(item, i):
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
    return model, _text(item.get("text"), f"responses[{i}].text"), dict(scores)


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
        _check_model("chosen_model", parsed.chosen_model)
        _check_model("rejected_model", parsed.rejected_model)
    for name, text in fields:
        _check_text(name, text, max_chars)
    if isinstance(parsed, ResponsesRecord) and parsed.responses:
        kept = []
        for i, response in enumerate(parsed.responses):
            try:
                _check_model(f"responses[{i}].model", response[0])
                _check_text(f"responses[{i}].text", response[1], max_chars)
                kept.append(response)
            except RowError as exc:
                parsed.dropped.append(str(exc))
        if not kept:
            raise RowError(parsed.dropped[-1] if len(parsed.responses) == 1 else
                           f"every response of the row was rejected: {'; '.join(parsed.dropped[:3])}")
        parsed.responses = kept


# Response.model's max_length (a longer name would fail the whole batch's COPY, not just its row).
MODEL_MAX_CHARS = 200


def _check_model(name, model):
    if len(model) > MODEL_MAX_CHARS:
        raise RowError(f"field '{name}' has {len(model):,} characters, over the {MODEL_MAX_CHARS} a model name "
                       "may have")
    if "\x00" in model:
        raise RowError(f"field '{name}' contains a NUL byte (\\x00), which PostgreSQL cannot store")


def _check_text(name, text, max_chars):
    if "\x00" in text:
        raise RowError(f"field '{name}' contains a NUL byte (\\x00), which PostgreSQL cannot store")
    if len(text) > max_chars:
        raise RowError(f"field '{name}' has {len(text):,} characters, over the limit of {max_chars:,}")


# Other tools' formats build on the helpers above.
from . import foreign_formats  # noqa: E402
