"""Reading a 1-10 score out of what an LLM judge wrote. Never invents one.

Judges are asked to end with the overall score in square brackets, but real models write
`[8]`, `[[8]]`, `【8】`, `总体评分：8`, `评分: 8.5`, `8/10`, with full-width digits, or several
bracketed numbers (per-criterion scores before the overall one). The rule: the first score under
the last overall-score heading (`总体评分/总分/Overall score/…`), or on the only line starting
`评分：`/`Score:`; else, only when the judge does not say it gives no overall score (`无法给出总体
评分`, `cannot give a score`, `总体评分：N/A`, …), the last bracketed number, the last labelled score,
the last `N/10`. A judge that scores each point and then declines an overall score gets none: a
per-point number is not its verdict. A score outside 1-10 is rejected, not clamped. Output without
a score is a refusal when it reads like one, else a parse error whose reason says why.
"""

import re
import unicodedata
from dataclasses import dataclass

OK, PARSE_ERROR, REFUSED = "ok", "parse_error", "refused"

# Runs of spaces, line breaks and markdown are matched possessively (`*+`, `++`): with plain `\s*\**\s*`
# every split of a run was tried, and a judge output with a few hundred spaces after `评分` took
# minutes to parse (a worker stuck on one answer). Each possessive run is followed by something that
# cannot start with what it consumed, so nothing that matched before is lost.
_NUM = r"(\d{1,3}(?:\.\d+)?)"
# NFKC turns full-width digits, brackets and colons into ASCII; 【】 survive it and are listed here.
_BRACKETED = re.compile(r"(?:\[\[\s*+" + _NUM + r"\s*+(?:/\s*+10|分)?\s*+\]\]|[\[【]\s*+" + _NUM
                        + r"\s*+(?:/\s*+10|分)?\s*+[\]】])")
_HEADINGS = (r"总体评分|总体得分|整体评分|综合评分|综合得分|最终评分|最终得分|总评分|总评|总分"
             r"|overall\s++(?:score|rating)|final\s++(?:score|rating)")
# A heading followed by a cap (`总体评分最高为 [5]`, the Math rubric's rule restated) is not the verdict.
_HEADING = re.compile(rf"({_HEADINGS})(?!\s*+(?:最高|最多|不超过|不得超过|不能超过|上限|(?:is\s++)?(?:at\s++most|capped)))",
                      re.IGNORECASE)
# A line that starts with a bare score label (`评分：7`, `Score: [7]`) is the overall line when it is
# the only one; several are per-criterion scores (`Score: 3` under each criterion).
_LINE_LABEL = re.compile(r"^(?:[^\S\n]|[*#_>\-])*+(?:评分|得分|打分|分数|score|rating)(?=[\s*_]*+[:=为是])",
                         re.IGNORECASE | re.MULTILINE)
# Right after a heading: markdown emphasis, then a colon, 为/是 or a line break, then the number
# (maybe bracketed). Without the separator, "总分10分" in a restated scale would read as a score.
_AFTER_HEADING = re.compile(r"^(?:[^\S\n]|[*#_])*+[:=为是\n][\s*#:_\-—=]*+(?:(?:\[\[|\[|【)\s*+)?" + _NUM + r"(?!\d)")
_LABELLED = re.compile(
    r"(?:评分|得分|分数|打分|score|rating)[\s*]*+(?:(?:为|是)[\s*]*+)?(?:[:=][\s*]*+)?" + _NUM
    + r"(?![\d.]*+\s*+[-~～])",
    re.IGNORECASE,
)
# The judge saying it gives no overall score. Chinese: a "cannot" word, then a giving verb and a score
# noun (`无法给出总体评分`, `不能给出具体分数`), or a scoring verb alone (`无法评分`, `不予打分`); not
# `无法得分` or `不能给分`, which take the points of one criterion away. English alike, but not a cap
# (`cannot give a score above 5`) nor a response that `cannot score highly`. And a score line whose
# value is N/A, 无, 不适用 or 无法给出.
_NOT_GIVEN = r"(?:N/?A\b|none\b|null\b|暂?无(?=[^\S\n]*+(?:[\]】。.,，;；)\n]|$))|不适用|无法给出|不能给出|无法确定)"
_CANNOT = r"(?:cannot|can\s?not|can[’']t|unable\s++to|not\s++able\s++to|decline\s++to|refrain\s++from)"
_DENIAL = re.compile(
    r"(?:无法|不能|不予|无从|没法|难以|不便)\s*+(?:(?:给出|给予|提供|做出|作出|确定|打出)\s*+(?:一个|任何)?\s*+"
    r"(?:具体|明确|确切|准确|合理)?\s*+的?\s*+(?:总体|整体|综合|最终|总)?\s*+(?:评分|打分|分数|得分|给分|总分)"
    r"|(?:总体|整体|综合|最终)?(?:评分|打分)(?!标准|细则|规则|维度|项|依据))"
    r"|暂无(?:总体|整体|综合|最终)?(?:评分|打分|分数|得分)|不(?:予|作|做)?(?:评分|打分)(?!标准|细则|规则|维度|项|依据)"
    rf"|{_CANNOT}\s++(?:give|giving|assign|assigning|provide|providing|determine|offer|award)\s++"
    r"(?:(?:an?|the|any)\s++)?(?:(?:overall|final|total|single|meaningful)\s++)?(?:score|rating)\b"
    r"(?!\s++(?:higher|above|over|more|greater|below|lower|less)\b)"
    r"|(?:unable|not\s++able)\s++to\s++(?:score|rate)\b"
    r"|(?:cannot|can\s?not|can[’']t)\s++(?:score|rate)\s++(?:this|it)\b"
    r"|(?:cannot|can\s?not|can[’']t)\s++be\s++(?:scored|rated)|\bno\s++(?:overall|final|total)\s++(?:score|rating)\b"
    rf"|(?:{_HEADINGS}|overall|final|总体|整体|综合|最终|评分|得分|分数|score|rating)[\s*]*+"
    rf"(?:[:=为是][\s*]*+(?:(?:\[\[?|【)\s*+)?|(?:\[\[?|【)\s*+){_NOT_GIVEN}",
    re.IGNORECASE,
)
# Quoted text is the response's or the prompt's, not the judge's own word (`回答“抱歉，我无法评分”`).
_QUOTED = re.compile(r"“[^”\n]{0,300}”|\"[^\"\n]{0,300}\"|「[^」\n]{0,300}」|『[^』\n]{0,300}』|‘[^’\n]{0,300}’"
                     r"|(?<![A-Za-z])'[^'\n]{1,300}'(?![A-Za-z])")
_OUT_OF_TEN = re.compile(_NUM + r"\s*+/\s*+10(?!\d)")
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
    unquoted = _QUOTED.sub(lambda m: " " * len(m.group()), text)  # same positions as `text`
    denials = list(_DENIAL.finditer(unquoted))
    found = _overall(text, denials)
    if found is None:
        found = _last_score(text)
        if found is not None and denials:
            return ParsedScore(PARSE_ERROR, analysis=raw.strip(), reason=_denied(raw, origin, denials[-1]))
    if found is None:
        if _REFUSAL.search(text):
            return ParsedScore(REFUSED, analysis=raw.strip(), reason="the judge refused")
        reason = _denied(raw, origin, denials[-1]) if denials else "no score found"
        return ParsedScore(PARSE_ERROR, analysis=raw.strip(), reason=reason)
    value, start = found
    if not 1 <= value <= 10:
        return ParsedScore(PARSE_ERROR, analysis=raw.strip(), reason=f"score {value:g} is outside 1-10")
    analysis = raw[:origin[start]].rstrip(" \t\n*#").strip()
    return ParsedScore(OK, score=value, analysis=analysis or raw.strip())


def _denied(raw, origin, denial):
    """The reason, quoting the denial as the judge wrote it."""
    return f"the judge gives no overall score ({raw[origin[denial.start()]:origin[denial.end()]].strip()!r})"


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


def _overall(text, denials):
    """(score, where its line starts) from the last overall-score line, or None. A line inside a denial
    (`无法给出总体评分`) is none; its number is looked for up to the next denial."""
    def undenied(pattern):
        return [m for m in pattern.finditer(text) if not any(d.start() <= m.start() < d.end() for d in denials)]

    headings, labels = undenied(_HEADING), undenied(_LINE_LABEL)
    if not headings and len(labels) != 1:
        return None
    heading = headings[-1] if headings else labels[0]
    end = min((d.start() for d in denials if d.start() >= heading.end()), default=len(text))
    tail = text[heading.end():end]
    direct = _AFTER_HEADING.match(tail)
    if direct:
        return float(direct.group(1)), heading.start()
    bracket = _BRACKETED.search(tail) if headings else None
    if bracket:
        return float(bracket.group(1) or bracket.group(2)), heading.start()
    return None


def _last_score(text):
    """(score, position) of the last bracketed number, else the last labelled score, else the last N/10."""
    brackets = list(_BRACKETED.finditer(text))
    if brackets:
        last = brackets[-1]
        return float(last.group(1) or last.group(2)), last.start()
    for pattern in (_LABELLED, _OUT_OF_TEN):
        matches = list(pattern.finditer(text))
        if matches:
            return float(matches[-1].group(1)), matches[-1].start()
    return None
