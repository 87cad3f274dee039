"""Reading a 1-10 score out of what an LLM judge wrote. Never invents one.

Judges are asked to end with the overall score in square brackets, but real models write
`[8]`, `[[8]]`, `【8】`, `总体评分：8`, `评分: 8.5`, `8/10`, with full-width digits, or several
bracketed numbers (per-criterion scores before the overall one). The rule: the first score under
the last overall-score heading; else the last bracketed number; else the last labelled score;
else the last `N/10`. A score outside 1-10 is rejected, not clamped. Output without any score is
a refusal when it reads like one, else a parse error.
"""

import re
import unicodedata
from dataclasses import dataclass

OK, PARSE_ERROR, REFUSED = "ok", "parse_error", "refused"

_NUM = r"(\d{1,3}(?:\.\d+)?)"
# NFKC turns full-width digits, brackets and colons into ASCII; 【】 survive it and are listed here.
_BRACKETED = re.compile(r"(?:\[\[\s*" + _NUM + r"\s*(?:/\s*10|分)?\s*\]\]|[\[【]\s*" + _NUM + r"\s*(?:/\s*10|分)?\s*[\]】])")
_HEADING = re.compile(
    r"(总体评分|总体得分|整体评分|综合评分|综合得分|最终评分|最终得分|总评分|总评|总分"
    r"|overall\s+(?:score|rating)|final\s+(?:score|rating))",
    re.IGNORECASE,
)
# Right after a heading: markdown emphasis, then a colon, 为/是 or a line break, then the number
# (maybe bracketed). Without the separator, "总分10分" in a restated scale would read as a score.
_AFTER_HEADING = re.compile(r"^[\s*#_]*[:=为是\n][\s*#:_\-—=]*(?:\[\[|\[|【)?\s*" + _NUM + r"(?!\d)")
_LABELLED = re.compile(
    r"(?:评分|得分|分数|打分|score|rating)\s*\**\s*(?:为|是)?\s*[:=]?\s*\**\s*" + _NUM + r"(?![\d.]*\s*[-~～])",
    re.IGNORECASE,
)
_OUT_OF_TEN = re.compile(_NUM + r"\s*/\s*10(?!\d)")
_REFUSAL = re.compile(
    r"(I(?:'m| am) sorry|I apologi[sz]e|I can(?:not|'t)|I(?:'m| am) (?:unable|not able)|as an AI"
    r"|抱歉|对不起|我无法|我不能|无法(?:提供|完成|协助|评估|评价|回答)|不能(?:提供|协助|评估|评价)|拒绝(?:回答|评估|评价))",
    re.IGNORECASE,
)


@dataclass(frozen=True)
class ParsedScore:
    status: str
    score: float | None = None
    analysis: str = ""
    reason: str = ""


def parse_score(raw):
    """The judge's verdict in `raw` as a ParsedScore (status ok, parse_error or refused)."""
    if raw is None or not raw.strip():
        return ParsedScore(PARSE_ERROR, reason="empty output")
    text, origin = _normalise(raw)
    found = _find(text)
    if found is None:
        if _REFUSAL.search(text):
            return ParsedScore(REFUSED, analysis=raw.strip(), reason="the judge refused")
        return ParsedScore(PARSE_ERROR, analysis=raw.strip(), reason="no score found")
    value, start = found
    if not 1 <= value <= 10:
        return ParsedScore(PARSE_ERROR, analysis=raw.strip(), reason=f"score {value:g} is outside 1-10")
    analysis = raw[:origin[start]].rstrip(" \t\n*#").strip()
    return ParsedScore(OK, score=value, analysis=analysis or raw.strip())


def _normalise(raw):
    """NFKC character by character, with each normalised position's index in `raw`, so that the
    analysis is cut from what the judge wrote, full-width punctuation and all."""
    parts, origin = [], []
    for index, char in enumerate(raw):
        folded = unicodedata.normalize("NFKC", char) if ord(char) > 127 else char
        parts.append(folded)
        origin.extend([index] * len(folded))
    origin.append(len(raw))
    return "".join(parts), origin


def _find(text):
    """(score, position where the verdict starts) or None."""
    headings = list(_HEADING.finditer(text))
    if headings:
        heading = headings[-1]
        tail = text[heading.end():]
        direct = _AFTER_HEADING.match(tail)
        if direct:
            return float(direct.group(1)), heading.start()
        bracket = _BRACKETED.search(tail)
        if bracket:
            return float(bracket.group(1) or bracket.group(2)), heading.start()
    brackets = list(_BRACKETED.finditer(text))
    if brackets:
        last = brackets[-1]
        return float(last.group(1) or last.group(2)), last.start()
    for pattern in (_LABELLED, _OUT_OF_TEN):
        matches = list(pattern.finditer(text))
        if matches:
            return float(matches[-1].group(1)), matches[-1].start()
    return None
