"""Formats other tools write, turned into the records of formats.py: Argilla v2 exports, Label Studio
pairwise tasks, raw UltraFeedback, HH-RLHF transcripts, and TRL's implicit prompt.

Which response is chosen always comes from the people's (or the judge's) verdict in the record: the
annotators' ranking, the side they selected, the scores. Never from the order of columns or fields.
"""

import ast
import re
import statistics
import unicodedata

import orjson

from ..models import Domain
from .formats import ResponsesRecord, RowError, _check_conversation, _pair, _text, _turn

ARGILLA, LABEL_STUDIO, ULTRAFEEDBACK, HH_RLHF = "argilla", "labelstudio", "ultrafeedback", "hh-rlhf"
FOREIGN_FORMATS = (ARGILLA, LABEL_STUDIO, ULTRAFEEDBACK, HH_RLHF)

# UltraFeedback's annotator (GPT-4, one judge): its ratings are imported as this judge's scores.
ULTRAFEEDBACK_JUDGE = "ultrafeedback"
ULTRAFEEDBACK_ASPECTS = ("helpfulness", "honesty", "instruction_following", "truthfulness")

# Field names that hold the prompt in Argilla and Label Studio projects, most telling first.
PROMPT_NAMES = ("prompt", "instruction", "question", "query", "input", "conversation", "messages", "chat", "text")
# Argilla's record bookkeeping in a flattened export (`to_datasets`): never a field.
ARGILLA_RECORD_KEYS = {"id", "_server_id", "status", "inserted_at", "updated_at", "vectors", "metadata"}
ARGILLA_SUBMITTED = (None, "submitted")  # exports before v2.1 carry no status: every response was submitted

HH_TURN = re.compile(r"(?:^|\n\n)(Human|Assistant):[ \t]?")


def detect(record):
    """The foreign format a record is in, or None. Checked before our own formats: an Argilla record
    has `responses`, raw UltraFeedback has `instruction`, and both would pass for ours."""
    keys = record.keys()
    if isinstance(record.get("fields"), dict) and ("responses" in keys or "suggestions" in keys):
        return ARGILLA
    if any(isinstance(k, str) and k.endswith((".responses", ".suggestion")) for k in keys):
        return ARGILLA
    if isinstance(record.get("data"), dict) and ("annotations" in keys or "predictions" in keys):
        return LABEL_STUDIO
    if "completions" in keys and ("instruction" in keys or "prompt" in keys):
        return ULTRAFEEDBACK
    if "prompt" not in keys and is_hh_transcript(record.get("chosen")):
        return HH_RLHF
    return None


# HH-RLHF: "\n\nHuman: …\n\nAssistant: …" transcripts; chosen and rejected share all but the last answer.

def is_hh_transcript(value):
    return isinstance(value, str) and "Human:" in value and "Assistant:" in value and HH_TURN.search(value) is not None


def hh_messages(text, name):
    """The {role, content} messages of a transcript; RowError where it has none or text before the first turn."""
    parts = HH_TURN.split(text)
    if parts[0].strip():
        raise RowError(f"field '{name}' has text before its first 'Human:' turn")
    if len(parts) < 3:
        raise RowError(f"field '{name}' has no 'Human:' / 'Assistant:' turns")
    roles = {"Human": "user", "Assistant": "assistant"}
    return [{"role": roles[parts[i]], "content": parts[i + 1].strip()} for i in range(1, len(parts), 2)]


def parse_hh_rlhf(record):
    transcripts = []
    for name in ("chosen", "rejected"):
        value = record.get(name)
        if value is None:
            raise RowError(f"missing field '{name}'")
        if not isinstance(value, str):
            raise RowError(f"field '{name}' must be a 'Human:' / 'Assistant:' transcript, got {type(value).__name__}")
        messages = hh_messages(value, name)
        if messages[-1]["role"] == "assistant" and not messages[-1]["content"]:
            raise RowError(f"the last 'Assistant:' turn of '{name}' is empty")
        transcripts.append(messages)
    return implicit_prompt_pair(*transcripts)


# TRL's implicit prompt: chosen and rejected each hold the whole conversation; what they share is the prompt.

def implicit_prompt_pair(chosen, rejected):
    """The pair of two conversations (lists of {role, content}) that share their beginning: the shared
    turns are the prompt (with its history), the first turns that differ are the two answers. The
    answers must be the conversations' last turns, by the assistant, right after a user turn."""
    for name, messages in (("chosen", chosen), ("rejected", rejected)):
        for i, m in enumerate(messages):
            if not isinstance(m, dict) or m.get("role") not in ("system", "user", "assistant"):
                raise RowError(f"{name}[{i}] must be a {{role, content}} message with role system, user or assistant")
    shared = 0
    while (shared < min(len(chosen), len(rejected)) and chosen[shared]["role"] == rejected[shared]["role"]
           and chosen[shared].get("content") == rejected[shared].get("content")):
        shared += 1
    if shared == len(chosen) == len(rejected):
        raise RowError("chosen and rejected are identical")
    if shared == 0:
        raise RowError("without 'prompt', chosen and rejected must begin with the same prompt; "
                       "they differ from their first message")
    for name, messages in (("chosen", chosen), ("rejected", rejected)):
        rest = messages[shared:]
        if not rest:
            raise RowError(f"'{name}' ends where the shared prompt ends (message {shared}): it has no answer")
        if rest[0]["role"] != "assistant":
            raise RowError(f"chosen and rejected differ at message {shared}, a {rest[0]['role']} turn: "
                           "they are not two answers to one prompt")
        if len(rest) > 1:
            raise RowError(f"'{name}' goes on for {len(rest) - 1} more message(s) after its answer "
                           f"(message {shared}); only one answer per side can be imported")
    prompt = [{"role": m["role"], "content": _text(m.get("content"), f"chosen[{i}].content")}
              for i, m in enumerate(chosen[:shared])]
    _check_conversation(prompt, "chosen")
    return _pair(prompt, _text(chosen[shared].get("content"), f"chosen[{shared}].content"),
                 _text(rejected[shared].get("content"), f"rejected[{shared}].content"))


def implicit_text_pair(chosen, rejected):
    """Two plain texts without a prompt (TRL's standard implicit-prompt form): their common beginning is
    the prompt, the rest of each the answer. A space before the split goes with the answers, as in TRL.
    The split must fall between words (a space or punctuation on one side): two answers that merely
    begin with the same character share no prompt."""
    shared = 0
    limit = min(len(chosen), len(rejected))
    while shared < limit and chosen[shared] == rejected[shared]:
        shared += 1
    if shared and chosen[shared - 1].isspace():
        shared -= 1
    prompt = chosen[:shared]
    if not prompt.strip():
        raise RowError("without 'prompt', chosen and rejected must begin with the same prompt text; "
                       "they share no beginning")
    if not (_boundary(prompt[-1]) or _boundary(chosen[shared:shared + 1]) and _boundary(rejected[shared:shared + 1])):
        raise RowError(f"without 'prompt', chosen and rejected share only {prompt[-20:]!r}, which ends inside a "
                       "word: give the prompt in a 'prompt' field")
    return _pair([{"role": "user", "content": prompt}], _text(chosen[shared:], "chosen (after the shared prompt)"),
                 _text(rejected[shared:], "rejected (after the shared prompt)"))


def _boundary(char):
    return bool(char) and (char.isspace() or unicodedata.category(char)[0] in "PZ")


# UltraFeedback, the raw release: an instruction and four completions, each rated 1-5 on four aspects.

def parse_ultrafeedback(record):
    name = "instruction" if "instruction" in record else "prompt"
    prompt = _text(record.get(name), name)
    completions = record.get("completions")
    if not isinstance(completions, list) or not completions:
        raise RowError("field 'completions' must be a non-empty list of {model, response, annotations}")
    responses, dropped = [], []
    for i, completion in enumerate(completions):
        try:
            responses.append(_ultrafeedback_completion(completion, i))
        except RowError as exc:
            dropped.append(str(exc))
    return responses_with_dropped([{"role": "user", "content": prompt}], responses, dropped)


def _ultrafeedback_completion(completion, i):
    if not isinstance(completion, dict):
        raise RowError(f"completions[{i}] must be an object with 'response'")
    model = completion.get("model") or ""
    if not isinstance(model, str):
        raise RowError(f"completions[{i}].model must be a string")
    text = _text(completion.get("response"), f"completions[{i}].response")
    score = ultrafeedback_score(completion.get("annotations"), f"completions[{i}].annotations")
    return model, text, {ULTRAFEEDBACK_JUDGE: score} if score is not None else {}


def ultrafeedback_score(annotations, name):
    """The mean of the aspects' 1-5 ratings, times 2: a score on the 1-10 scale of our judges, so that
    a gap of 2 (the default pairing threshold) is one rating point. None when no aspect was rated
    ("N/A" ratings are left out)."""
    if annotations in (None, {}):
        return None
    if not isinstance(annotations, dict):
        raise RowError(f"field '{name}' must be an object of aspect to {{Rating, Rationale}}")
    ratings = []
    for aspect, value in annotations.items():
        rating = value.get("Rating") if isinstance(value, dict) else value
        if rating in (None, "", "N/A"):
            continue
        try:
            number = float(rating)
        except (TypeError, ValueError):
            raise RowError(f"{name}.{aspect}.Rating is {rating!r}, not a number") from None
        if not 1 <= number <= 5:
            raise RowError(f"{name}.{aspect}.Rating is {rating}, outside UltraFeedback's 1-5 scale")
        ratings.append(number)
    return round(2 * statistics.fmean(ratings), 6) if ratings else None


def binarized_scores(record):
    """({judge: score} of chosen, of rejected) from UltraFeedback-binarized `score_chosen` /
    `score_rejected` (or Argilla's cleaned `chosen-rating` / `rejected-rating`), on the 1-10 scale."""
    found = []
    for names in (("score_chosen", "chosen-rating", "chosen_rating"),
                  ("score_rejected", "rejected-rating", "rejected_rating")):
        name = next((n for n in names if record.get(n) is not None), None)
        if name is None:
            found.append({})
            continue
        score = record[name]
        if isinstance(score, bool) or not isinstance(score, (int, float)):
            raise RowError(f"field '{name}' must be a number, got {score!r}")
        if not 1 <= score <= 10:
            raise RowError(f"field '{name}' is {score}, outside the 1-10 scale")
        found.append({ULTRAFEEDBACK_JUDGE: float(score)})
    return found


def responses_with_dropped(messages, responses, dropped):
    """A ResponsesRecord of the good responses; the bad ones' reasons ride along in `dropped` (the
    import lists them, the rest of the row is imported). RowError when none is good."""
    if not responses:
        raise RowError(dropped[0] if len(dropped) == 1 else
                       f"every response of the row was rejected: {'; '.join(dropped[:3])}")
    return ResponsesRecord(Domain.OTHER, "", messages, responses, dropped=dropped)


# Argilla v2: `records.to_json()` (nested: fields, responses, suggestions, metadata) and
# `records.to_datasets()` (flattened: QUESTION.responses, QUESTION.responses.status, QUESTION.suggestion…).

def parse_argilla(record):
    nested = isinstance(record.get("fields"), dict)
    fields = _argilla_fields(record, nested)
    question, rankings = _argilla_rankings(record, nested)
    best, worst = _consensus(rankings, question)
    chosen_field, rejected_field = _resolve(best, fields, question), _resolve(worst, fields, question)
    prompt_field = _prompt_field(fields, exclude={chosen_field, rejected_field})
    messages = _prompt_messages(fields[prompt_field], prompt_field)
    if fields.get("system") and messages[0]["role"] != "system":
        messages.insert(0, {"role": "system", "content": _text(fields["system"], "system")})
    pair = _pair(messages, _turn(fields[chosen_field], chosen_field), _turn(fields[rejected_field], rejected_field))
    metadata = record.get("metadata") if nested and isinstance(record.get("metadata"), dict) else {}
    pair.domain_label = str(metadata.get("domain") or metadata.get("category") or fields.get("domain") or "")
    return pair


def _argilla_fields(record, nested):
    """{name: value} of the record's fields: text, or chat (a list of {role, content})."""
    source = record["fields"] if nested else {
        k: v for k, v in record.items()
        if isinstance(k, str) and k not in ARGILLA_RECORD_KEYS and ".responses" not in k and ".suggestion" not in k}
    return {k: v for k, v in source.items() if isinstance(v, str) or _is_chat(v)}


def _is_chat(value):
    return isinstance(value, list) and bool(value) and all(isinstance(m, dict) and "content" in m for m in value)


def _argilla_rankings(record, nested):
    """(question, [ranking, …]): the submitted rankings of the record's ranking question by the
    annotators, else its suggestion's ranking. A ranking is a list of option names, best first, or
    of {value, rank}."""
    if nested:
        responses = record.get("responses") if isinstance(record.get("responses"), dict) else {}
        suggestions = record.get("suggestions") if isinstance(record.get("suggestions"), dict) else {}
        by_question = {q: [r.get("value") for r in (answers or []) if isinstance(r, dict)
                           and r.get("status") in ARGILLA_SUBMITTED]
                       for q, answers in responses.items() if isinstance(answers, list)}
        suggested = {q: s.get("value") for q, s in suggestions.items() if isinstance(s, dict)}
    else:
        by_question, suggested = {}, {}
        for key, value in record.items():
            if key.endswith(".responses"):
                question = key.removesuffix(".responses")
                values = _list(_cell(value, key), key)
                status_key = f"{key}.status"
                statuses = _list(_cell(record.get(status_key), status_key), status_key) or [None] * len(values)
                by_question[question] = [v for v, s in zip(values, statuses) if s in ARGILLA_SUBMITTED]
            elif key.endswith(".suggestion"):
                suggested[key.removesuffix(".suggestion")] = _cell(value, key)
    answered = [q for q in {**by_question, **suggested} if by_question.get(q) or suggested.get(q)]
    if not answered:
        raise RowError("Argilla record with no submitted response and no suggestion (a pending or discarded record)")
    candidates = [q for q in answered if _is_ranking_question(by_question.get(q), suggested.get(q))]
    if not candidates:
        found = sorted(answered)
        raise RowError(f"Argilla record without a ranking question to decide chosen and rejected (questions: "
                       f"{', '.join(found) or 'none'}); the ranking is the annotators' order of the responses")
    if len(candidates) > 1:
        named = [q for q in candidates if "rank" in q.lower() or "prefer" in q.lower()]
        if len(named) != 1:
            raise RowError(f"Argilla record with several ranking questions ({', '.join(sorted(candidates))}): "
                           "cannot tell which decides chosen and rejected")
        candidates = named
    question = candidates[0]
    rankings = [r for r in by_question.get(question, []) if r]
    if not rankings and suggested.get(question):
        rankings = [suggested[question]]
    if not rankings:
        raise RowError(f"Argilla record with no submitted response to '{question}' and no suggestion "
                       "(a pending or discarded record)")
    return question, rankings


def _is_ranking_question(answers, suggestion):
    values = [v for v in (answers or []) + [suggestion] if v is not None]
    return bool(values) and all(isinstance(v, list) and len(v) >= 2 and all(
        isinstance(o, str) or isinstance(o, dict) and "value" in o for o in v) for v in values)


def _cell(value, key):
    """A flattened export's list value; a CSV cell holds it as JSON (or as Python's repr, pandas' way)."""
    if not isinstance(value, str):
        return value
    if not value.strip():
        return None
    try:
        return orjson.loads(value)
    except orjson.JSONDecodeError:
        pass
    try:
        return ast.literal_eval(value)
    except (ValueError, SyntaxError, RecursionError, MemoryError, TypeError):
        raise RowError(f"field '{key}' must hold a list (JSON), got {value[:40]!r}") from None


def _list(value, key):
    if value is None:
        return []
    if not isinstance(value, list):
        raise RowError(f"field '{key}' must be a list, got {type(value).__name__}")
    return value


def _consensus(rankings, question):
    """(best option, worst option) by the annotators' mean rank; a tie at the top or the bottom is no verdict."""
    ranks = {}
    for ranking in rankings:
        for position, option in enumerate(ranking, 1):
            if isinstance(option, dict):
                name, rank = option.get("value"), option.get("rank") or position
            else:
                name, rank = option, position
            try:
                ranks.setdefault(str(name), []).append(float(rank))
            except (TypeError, ValueError):
                raise RowError(f"the ranking '{question}' gives {name!r} the rank {rank!r}, not a number") from None
    means = {name: statistics.fmean(r) for name, r in ranks.items()}
    if len(means) < 2:
        raise RowError(f"the ranking '{question}' ranks fewer than two responses")
    for which, end in (("best", min(means.values())), ("worst", max(means.values()))):
        tied = sorted(name for name, mean in means.items() if mean == end)
        if len(tied) > 1:
            raise RowError(f"the annotators' rankings of '{question}' tie for the {which} response "
                           f"({', '.join(tied)}): no verdict")
    return min(means, key=means.get), max(means, key=means.get)


def _resolve(option, fields, question):
    """The field a ranking option names: the field itself, the same name in another spelling
    (response-1 / response_1 / Response 1), or the field with the same number or letter (1 / A)."""
    if option in fields:
        return option
    squeezed = {_squeeze(name): name for name in fields}
    if _squeeze(option) in squeezed:
        return squeezed[_squeeze(option)]
    mark = _ordinal(option)
    if mark is not None:
        matches = [name for name in fields if _ordinal(name) == mark and name not in PROMPT_NAMES]
        if len(matches) == 1:
            return matches[0]
    raise RowError(f"the ranking '{question}' names {option!r}, which is no field of the record "
                   f"(fields: {', '.join(sorted(fields))})")


def _squeeze(name):
    return re.sub(r"[\W_]+", "", str(name)).casefold()


def _ordinal(name):
    """The trailing number of a name (answer2 -> 2), or its trailing letter (response_b, B -> 2)."""
    name = str(name).strip()
    digits = re.search(r"(\d+)$", name)
    if digits:
        return int(digits.group(1))
    letter = re.search(r"(?:^|[\W_])([A-Za-z])$", name)
    return ord(letter.group(1).lower()) - ord("a") + 1 if letter else None


def _prompt_field(fields, exclude):
    """The field that holds the prompt: `prompt` (which a column mapping may have named), another of
    the usual names, else the only other text field."""
    rest = [name for name in fields if name not in exclude and name not in ("system", "domain", "chosen", "rejected")]
    for name in PROMPT_NAMES:
        if name in rest:
            return name
    by_name = {name.casefold(): name for name in rest}
    for name in PROMPT_NAMES:
        if name in by_name:
            return by_name[name]
    if len(rest) == 1:
        return rest[0]
    raise RowError(f"cannot tell which field holds the prompt among {', '.join(sorted(rest)) or 'no fields'}; "
                   "name it with --columns prompt=FIELD")


def _prompt_messages(value, name):
    if isinstance(value, list):
        messages = [{"role": m.get("role") if m.get("role") in ("system", "assistant") else "user",
                     "content": _text(m.get("content"), f"{name}[{i}].content")} for i, m in enumerate(value)]
        return _check_conversation(messages, name)
    return [{"role": "user", "content": _text(value, name)}]


# Label Studio: a task's `data` and its annotations; a Pairwise control's result says which side won.

def parse_label_studio(record):
    data = record["data"]
    votes = _pairwise_votes(record.get("annotations"))
    source = "annotations"
    if not votes:
        votes, source = _pairwise_votes(record.get("predictions")), "predictions"
    if not votes:
        raise RowError("Label Studio task without a pairwise choice (selected: left/right) in its annotations "
                       "or predictions")
    left_votes = sum(1 for side, _to in votes if side == "left")
    if left_votes * 2 == len(votes):
        raise RowError(f"the {source} of this task disagree: {left_votes} chose left, {left_votes} right")
    left, right = _sides(data, {to for _side, to in votes})
    chosen, rejected = (left, right) if left_votes * 2 > len(votes) else (right, left)
    prompt_field = _prompt_field({k: v for k, v in data.items() if isinstance(v, str) or _is_chat(v)},
                                 exclude={left, right})
    pair = _pair(_prompt_messages(data[prompt_field], f"data.{prompt_field}"),
                 _turn(data[chosen], f"data.{chosen}"), _turn(data[rejected], f"data.{rejected}"))
    pair.domain_label = str(data.get("domain") or data.get("category") or "")
    return pair


def _pairwise_votes(annotations):
    """[(side, to_name)] of the pairwise results of annotations that were not cancelled."""
    votes = []
    for annotation in annotations or []:
        if not isinstance(annotation, dict) or annotation.get("was_cancelled"):
            continue
        for result in annotation.get("result") or []:
            value = result.get("value") if isinstance(result, dict) else None
            if isinstance(value, dict) and value.get("selected") in ("left", "right"):
                votes.append((value["selected"], str(result.get("to_name") or "")))
                break
    return votes


def _sides(data, to_names):
    """(left field, right field): the two objects a Pairwise control compares are named in its
    `toName`, left first; results name them as "left,right", else the data's two answer fields are
    told apart by their number or letter (answer1/answer2, response_a/response_b)."""
    for to_name in to_names:
        names = [n.strip() for n in to_name.split(",")]
        if len(names) == 2 and all(n in data for n in names):
            return names[0], names[1]
    texts = [k for k, v in data.items() if isinstance(v, str) or _is_chat(v)]
    numbered = sorted((_ordinal(k), k) for k in texts if _ordinal(k) is not None and k not in PROMPT_NAMES)
    if len(numbered) == 2 and numbered[0][0] != numbered[1][0]:
        return numbered[0][1], numbered[1][1]
    if {"left", "right"} <= set(texts):
        return "left", "right"
    raise RowError(f"cannot tell which of the task's fields ({', '.join(texts)}) were shown left and right; "
                   "name them answer1/answer2 (or text1/text2, response_a/response_b)")


PARSERS = {ARGILLA: parse_argilla, LABEL_STUDIO: parse_label_studio, ULTRAFEEDBACK: parse_ultrafeedback,
           HH_RLHF: parse_hh_rlhf}
