"""What a response's text says about itself, read once per response: cut off, (nearly) empty, a refusal, or
in another language than its prompt asks for. The low-quality rules of review/quality_rules.py list pairs
by these stored readings, so at a million pairs a rule is a join on a small table, not a regular
expression over every text.

Each check is written from what the defect looks like in any text, not from a list of examples:
- Cut off: generation stops at a token budget, wherever the text is: inside a code block (an odd number of
  fences), after an opening bracket or quote that never closes, on a comma, colon or dash, or in the middle
  of a running sentence or word (the last line is prose that has not reached its full stop). A short last
  line without a full stop (a signature, a heading, a list item, a table row, a one-line answer) is how
  complete texts end too, and is not counted.
- Empty: what is left once spaces, punctuation, symbols and words that say nothing (placeholders such as
  N/A or 空, acknowledgements such as 嗯 or 好的) are taken out, counted in content units (a Han, kana or
  Hangul character, a word of an alphabetic script, a number). A short answer is fine when the prompt asks
  for one (a choice among options, a number, yes or no, one word).
- Refusal: a score over the opening sentences: the speaker says they cannot or will not answer, help or
  provide (the core), with the apology, the "as an AI" and the policy reason that come with it. A
  phrase anywhere else in the text, in quotes, or an apology followed by the answer, is no refusal.
- Language: the prose (code blocks, inline code, formulas and links taken out) counted by Unicode script:
  Han, kana, Hangul, Cyrillic, Latin. Kanji with kana are Japanese. A prompt that asks for a translation
  (other than into Chinese) sets no expectation; one that names another language allows it.
"""

import functools
import re
import unicodedata
from dataclasses import dataclass

from django.db import transaction
from django.db.models import Exists, OuterRef

# Bumped whenever a check changes: stored readings of an older version are read again by the next count.
VERSION = 3

# ------------------------------------------------------------------------------------------------ prose

HAN = "\u3400-\u4dbf\u4e00-\u9fff\uf900-\ufaff"
# Hiragana and katakana without the middle dot and the prolonged sound mark, which Chinese text uses too
# (列夫・托尔斯泰).
KANA = "\u3041-\u3096\u309d-\u309f\u30a1-\u30fa\u30fd-\u30ff\u31f0-\u31ff\uff66-\uff6f\uff71-\uff9d"
HANGUL = "\uac00-\ud7a3\u1100-\u11ff\u3131-\u318e"
CYRILLIC = "\u0400-\u04ff"
LATIN = "A-Za-z\u00c0-\u00d6\u00d8-\u00f6\u00f8-\u024f"

# Code, formulas and links: not prose in any language. Fenced blocks (an unclosed one runs to the end).
# Each part with a piece of text it cannot match without: prose() leaves out the parts whose piece the text
# lacks, which changes no match (a part that cannot match anywhere never wins at any position) and spares
# most texts the address part, whose [\w.+-]+ runs over every Chinese character (\w) looking for an "@".
_NOT_PROSE_PARTS = (
    ("```", r"```.*?(?:```|\Z)"), ("~~~", r"^[ \t]*~~~.*?(?:^[ \t]*~~~|\Z)"),  # fenced code
    ("`", r"`[^`\n]+`"),  # inline code
    ("$$", r"\$\$.+?\$\$"), ("\\[", r"\\\[.+?\\\]"), ("\\(", r"\\\(.+?\\\)"), ("$", r"\$[^$\n]+\$"),  # formulas
    ("http", r"https?://\S+"), ("www.", r"www\.\S+"), ("@", r"[\w.+-]+@[\w-]+\.[\w.]+"),  # links and addresses
)


# Characters are counted by runs (a list of runs is far shorter than one of characters).
_HAN_RUN = re.compile(f"[{HAN}]+")
_KANA_RUN = re.compile(f"[{KANA}]+")
_HANGUL_RUN = re.compile(f"[{HANGUL}]+")
_RARE_SCRIPT = re.compile(f"[{KANA}{HANGUL}{CYRILLIC}]")
_LATIN_LETTER = re.compile(f"[{LATIN}]")
_CYRILLIC_WORD = re.compile(f"[{CYRILLIC}]+")
# A word in Latin letters, not part of a token with digits (x1, KMnO4, 4G).
_LATIN_WORD = re.compile(f"(?<![0-9{LATIN}])[{LATIN}]+(?:['’][{LATIN}]+)*(?![0-9{LATIN}])")
# Letters of the scripts not counted on their own (Thai, Arabic, Kannada, ...).
_OTHER_LETTER = re.compile(f"(?![{HAN}{KANA}{HANGUL}{CYRILLIC}{LATIN}])[^\\W\\d_]")
_NUMBER = re.compile(r"\d+(?:[.,]\d+)*")


@functools.lru_cache(maxsize=None)
def _not_prose(parts):
    """The pattern of the parts of _NOT_PROSE_PARTS at these indexes, in their order (None: no part)."""
    return re.compile("|".join(_NOT_PROSE_PARTS[i][1] for i in parts), re.M | re.S) if parts else None


def _count(run, text):
    """Characters of `text` in the runs that `run` finds."""
    return sum(map(len, run.findall(text)))


# A character or piece that every part of _NOT_PROSE_PARTS needs: most texts have none (one scan).
_MAYBE_NOT_PROSE = re.compile(r"[`~$\\@]|http|www\.")


def prose(text):
    if not _MAYBE_NOT_PROSE.search(text):
        return text
    pattern = _not_prose(tuple(i for i, (piece, _) in enumerate(_NOT_PROSE_PARTS) if piece in text))
    return pattern.sub(" ", text) if pattern is not None else text


@dataclass
class Scripts:
    han: int
    kana: int
    hangul: int
    cyrillic: int  # words
    latin: int  # words
    latin_long: int  # of them, those of two letters or more
    latin_grammar: int  # of those, the short words of grammar (the, of, und, de, ...)

    @classmethod
    def of(cls, text):
        latin = _LATIN_WORD.findall(text) if _LATIN_LETTER.search(text) else []
        long = [word for word in latin if len(word) > 1]
        kana = hangul = cyrillic = 0
        if _RARE_SCRIPT.search(text):  # one scan for the three that most texts lack
            kana, hangul = _count(_KANA_RUN, text), _count(_HANGUL_RUN, text)
            cyrillic = len(_CYRILLIC_WORD.findall(text))
        return cls(_count(_HAN_RUN, text), kana, hangul, cyrillic, len(latin), len(long),
                   sum(1 for word in long if word.lower() in GRAMMAR_WORDS))

    def units(self):
        """Weighted so that one unit is about one Chinese character of content: a word of an alphabetic
        script carries about as much as two."""
        return self.han + self.kana + self.hangul + LETTER_WORD_WEIGHT * (self.cyrillic + self.latin)

    def latin_language(self):
        """Latin-script words that are a language: sentences have words of grammar between their nouns;
        names, terms, commands and formulas (Python、PyTorch、sin x) have few or none. One-letter words
        (a variable, a grade) are left out."""
        return self.latin_long if self.latin_grammar >= max(2, GRAMMAR_SHARE * self.latin_long) else 0

    def shares(self):
        """{language: content units in it}, as language() and chinese_share() weigh them."""
        latin = LETTER_WORD_WEIGHT * self.latin_language()
        if self.kana >= JAPANESE_KANA_SHARE * (self.han + self.kana):
            shares = {"zh": 0, "ja": self.han + self.kana}
        else:
            shares = {"zh": self.han, "ja": self.kana}
        shares.update(ko=self.hangul, ru=LETTER_WORD_WEIGHT * self.cyrillic, en=latin)
        return shares

    def language(self):
        """The dominant language of the counted text ('' when there is none): zh, ja, ko, ru or en (any
        Latin-script language)."""
        shares = self.shares()
        best = max(shares, key=shares.get)
        return best if shares[best] else ""

    def chinese_share(self):
        """Share of the text's language in Chinese (kanji of a Japanese text are Japanese; Latin names and
        terms are no language)."""
        shares = self.shares()
        total = sum(shares.values())
        return shares["zh"] / total if total else 1.0


# Words of grammar of the languages written in Latin letters that a Chinese dataset meets (English, French,
# German, Spanish, ...): a closed class, so a short list covers most of their running text.
GRAMMAR_WORDS = frozenset("""
an the of to in on at by for from with and or but not no is are was were be been am do does did have has had
will would can could should may might must this that these those it its you he she we they me him her us them
my your his our their what which who how why when where there here if then than so as about into also just
le la les un une des du de et est sont pas que qui dans pour sur avec ce cette il elle nous vous ils je
der die das den dem ein eine einen und ist sind nicht ich sie es wir mit von zu auf für auch
el los las una y es son que por para con del se lo su al como más pero
""".split())
GRAMMAR_SHARE = 0.1
LETTER_WORD_WEIGHT = 2
# Japanese prose is 40-70 % kana; Chinese prose quoting a Japanese title has a few.
JAPANESE_KANA_SHARE = 0.2


def language_of(text):
    scripts = Scripts.of(prose(text))
    return scripts.language(), scripts.chinese_share(), scripts.units()


# ------------------------------------------------------------------------------------------------ cut off

# Closing brackets and quotes, with what they close (a straight quote closes a curly one: Chinese text
# mixes them).
_CLOSES = {"）": "（(", ")": "(（", "]": "[［", "}": "{｛", "”": "“", "\"": "“", "’": "‘", "'": "‘", "」": "「", "』": "『",
           "》": "《", "〉": "〈", "】": "【", "］": "［", "｝": "｛"}
_OPENERS = set("（([{［｛“‘「『《〈【")
# A text never ends on these: the sentence, clause or list goes on after them.
_GOES_ON = set("，,、：:；—–-/\\=+&") | _OPENERS
_CODE = re.compile(r"[(){}=]")
# A line that ends on one of these (or on a closer after one) has come to its end.
_LINE_ENDS = set("。．.！!？?…~～；;")
_LIST_MARK = re.compile(r"^\s*(?:[-*+•>]+|\d+(?:\.\d+)*[.、)）]?|[（(]\d+[)）]|[A-Za-z][.、)）])\s+|^\s*\d+[.、)）]")
# "答案：B", "置信度：90%", "输出：正面": a label and a short value, complete without a full stop.
_LABELLED = re.compile(r"[^：:，,。]{1,16}[：:]\s*([^，,。；;：:]+)")
_MATH = re.compile(r"\\[A-Za-z]|[\^_{]")  # TeX inside an unclosed $
_TILDE_FENCE = re.compile(r"^[ \t]*~~~", re.M)


# Characters at the end of a text that the cut-off check reads.
TAIL = 2_000


def cut_off(text):
    """Why `text` looks cut off by a token budget ('' when it does not): fence, formula, table, bracket,
    punct, word or sentence."""
    text = text.rstrip().replace("\\n", "\n")  # newlines some datasets keep escaped
    if not text:
        return ""
    if text.count("```") % 2 or len(_TILDE_FENCE.findall(text)) % 2:
        return "fence"
    if text.count("$$") % 2:
        return "formula"
    # only the end matters: the last lines, whose own convention the last one should follow
    lines = [line.strip() for line in prose(text[-TAIL:]).split("\n") if line.strip()]
    last = text[text.rfind("\n") + 1:].strip()
    if last.startswith(("```", "~~~")) or not lines:  # ends with a closed code block
        return ""
    if last.startswith("|"):
        return "" if last.endswith("|") else "table"
    if last.count("$") % 2 and _MATH.search(last[last.rfind("$"):]):
        return "formula"
    if _unclosed(last):
        return "bracket"
    end = text[-1]
    if end in _GOES_ON or (end == ";" and not _CODE.search(last)):  # code ends its statements with ";"
        return "" if _is_rule_line(last) else "punct"
    if not (end.isalnum() or end in "_%"):
        return ""
    if _cut_word(text):
        return "word"
    return "sentence" if _stopped_mid_sentence(last, lines[:-1]) else ""


def _cut_word(text):
    """The text ends on the beginning of a word in Latin letters that it wrote in full before (Photosho after
    Photoshop)."""
    match = _LAST_LATIN.search(text)
    if match is None:
        return False
    start = match.group()
    return any(word != start and word.startswith(start) for word in _LATIN_WORD.findall(text, 0, match.start()))


_LAST_LATIN = re.compile(f"(?<![{LATIN}])[{LATIN}]{{2,}}$")


def _stopped_mid_sentence(line, before):
    """The last line, which ends on a letter or digit, is a sentence that was stopped: a long running
    sentence (clauses, and as long as a paragraph), or a line where the text's other lines end theirs
    with a full stop. Complete without one: a label with a short value ("答案：B", "置信度：90%") or a
    result ("= 72", "是 6") after the line's last full stop, and the short lines of a signature."""
    item = _LIST_MARK.sub("", line)
    tail = _SENTENCE_SPLIT.split(item)[-1].strip()
    labelled = _LABELLED.fullmatch(tail)
    if item == line and labelled and Scripts.of(labelled[1]).units() <= SHORT_VALUE:
        return False
    if _RESULT.search(tail) or (item == line and _signed(line, before)):
        return False
    if Scripts.of(item).units() >= LONG_LAST_LINE and re.search(r"[，,、；;]", item):
        return True
    ends = [_ended(line) for line in before if not line.startswith(("#", "|")) and line[-1] not in "：:"]
    return bool(ends) and sum(ends) >= ENDED_LINES * len(ends)


def _ended(line):
    """The line ends its sentence: on a full stop, on a closer after one, or on a note in brackets after one
    ("客户的等级是多少？（槽：customer_tier）")."""
    line = _TRAILING_NOTE.sub("", line) or line
    return line[-1] in _LINE_ENDS or (line[-1] in _CLOSES and len(line) > 1 and line[-2] in _LINE_ENDS)


_TRAILING_NOTE = re.compile(r"(?<=[。．.！!？?])\s*[（(][^（()）]*[)）]$")
_SENTENCE_SPLIT = re.compile(r"[。！？!?]|\.\s")
_RESULT = re.compile(r"=|\d$")


def _signed(line, before):
    """The short last line of a closing block: a name under "Best regards," or 此致 / 敬礼."""
    if not before or Scripts.of(line).units() > SIGNATURE or re.search(r"[，,、；;：:]", line):
        return False
    previous = before[-1]
    if previous[-1] in "：:":  # "根据方程：" introduces what follows: content, not a sign-off
        return False
    # letters close with a courtesy ("Best regards,", "谢谢，期待您的回信！") or a sign-off (此致), not a statement
    return previous[-1] in ",，!！" or (Scripts.of(previous).units() <= 2 * SIGNATURE and previous[-1] not in _LINE_ENDS)


# Content units (Scripts.units) of a signature at most; the line before it (此致, 谢谢，期待您的回信！) up to twice
# as many.
SIGNATURE = 8
# Content units of the value of a "label: value" line at most (a grade, a date, a name).
SHORT_VALUE = 10
# A last line of this many content units (Scripts.units: a Chinese character, half a word), with clauses,
# and without a full stop is a running sentence, not a one-line answer.
LONG_LAST_LINE = 40
# Share of a text's other lines that end with a full stop (or a semicolon) from which its last line should
# too.
ENDED_LINES = 0.5


def _unclosed(line):
    """An opening bracket or quote in the line that nothing after it closes. A closer closes the nearest
    opener it matches; openers between are taken as closed too (sloppy nesting is no cut), and a bracket
    typed twice in its two widths is one (AlignBench's "企(（事)业单位")."""
    stack = []
    for match in _BRACKET.finditer(line):
        i, ch = match.start(), match.group()
        if ch in _OPENERS:
            if i and line[i - 1] in _OPENERS and _SAME_BRACKET.get(ch) == line[i - 1]:
                continue  # "(（事)": one bracket typed in both widths is one opener
            stack.append(ch)
        elif ch in _CLOSES:
            for i in range(len(stack) - 1, -1, -1):
                if stack[i] in _CLOSES[ch]:
                    del stack[i:]
                    break
    return bool(stack)


_BRACKET = re.compile("[" + re.escape("".join(sorted(_OPENERS | set(_CLOSES)))) + "]")
_SAME_BRACKET = {"(": "（", "（": "(", "[": "［", "［": "[", "{": "｛", "｛": "{"}


def _is_rule_line(line):
    return len(line) >= 3 and set(line) <= set("-*_= ")


# ------------------------------------------------------------------------------------------------ empty

# Words that stand in for an answer without being one: placeholders and acknowledgements, in the forms a
# text is left in once punctuation and spaces are gone (case folded).
_NO_CONTENT = re.compile(
    r"(?:(?:n/?a|none|null|nil|nan|undefined|empty|todo|tbd|tba|placeholder|\.\.\.|"
    r"无|空|暂无|略|待定|待补充|无内容|没有内容|内容为空|此处为空|"
    r"我?(?:好的?|嗯+|哦+|噢+|呃+|额+|啊+|唔+|行|收到|明白|了解|知道)(?:了|啦|呀|啊|哈|的)?|"
    r"ok(?:ay)?|sure|hmm+|um+|uh+))+")
# Words are split at spaces and punctuation, but not at the slash of N/A.
_SEPARATORS = re.compile(r"[^\w/]+|_+")


# Content is counted in this many first characters: far more than any threshold needs.
CONTENT_PREFIX = 200
# Texts longer than this are read for content without looking for words that say nothing.
SHORT_TEXT = 60


def content_units(text):
    """Content units of `text` with words that say nothing left out: a Han, kana or Hangul character, half a
    word of an alphabetic script (Scripts.units), a digit (two for a longer number), a pictograph, a letter
    of another script."""
    text = text[:CONTENT_PREFIX]
    if len(text) > SHORT_TEXT:  # placeholders and acknowledgements are short: count the words as they are
        return Scripts.of(text).units() + len(_NUMBER.findall(text))
    pieces = [p for p in _SEPARATORS.split(unicodedata.normalize("NFKC", text).casefold())
              if p and not _NO_CONTENT.fullmatch(p)]
    pieces = [p[0] if len(set(p)) == 1 else p for p in pieces]  # 是是, 哈哈哈: one syllable said again
    rest = " ".join(pieces)
    pictographs = sum(1 for ch in text if unicodedata.category(ch) == "So")
    numbers = sum(min(len(re.sub(r"\D", "", n)), LETTER_WORD_WEIGHT) for n in _NUMBER.findall(rest))
    return (Scripts.of(rest).units() + numbers + pictographs
            + len(_OTHER_LETTER.findall(rest)))


# What a prompt looks like when a short answer is the answer: options to choose from, a calculation, a
# question of yes or no, or an explicit request for a word, a number, a letter.
_OPTION = re.compile(r"(?<![A-Za-z])([A-D])\s*[.、．:：)）]")
_SHORT_ASKED = re.compile(
    r"选项|选择题|单选|多选|哪一?项|哪一?个选项|判断题|是非题|对还是错|对或错|正确与否|是否正确|是或否|"
    r"(?:只|只需|只要|直接|仅)(?:要|需)?(?:回答|答|给出|写|说出|输出|填)|"
    r"(?:一个|一|两个|几个)(?:字|词|数|数字|字母|单词|成语)|填空|简短回答|"
    r"等于多少|等于几|是多少|得多少|得几|结果是|计算|算一算|算一下|求值|"
    r"(?:返回|输出|回复|回答)\s*[“\"'「]?(?:\d(?!\d)|[A-Za-z](?![A-Za-z])|是|否|对|错|正面|负面)|"
    r"which of the following|true or false|yes or no|answer with|only the (?:letter|number|answer)", re.I)
_ARITHMETIC = re.compile(r"\d\s*[-+×xX*/÷＋－=＝]\s*\(?\d")
# A prompt that ends where the answer is to be filled in ("答案：", "A:").
_FILL_IN = re.compile(r"(?:答案|答|回答|解答|A|Answer|输出|结果|Output)\s*[：:]\s*$", re.I)
_YES_NO_QUESTION = re.compile(r"(?:吗|是不是|对不对|能不能|可不可以|有没有|是否)[？?]?\s*$")


def expects_short_answer(query):
    query = query.strip()
    if len(set(m.upper() for m in _OPTION.findall(query))) >= 2:
        return True
    return bool(_SHORT_ASKED.search(query) or _ARITHMETIC.search(query) or _FILL_IN.search(query)
                or (len(query) <= SHORT_QUESTION and _YES_NO_QUESTION.search(query)))


# A yes-or-no question longer than this asks for reasons too.
SHORT_QUESTION = 40


# ------------------------------------------------------------------------------------------------ refusal

_QUOTED = re.compile(r"“[^”\n]*”|「[^」\n]*」|『[^』\n]*』|‘[^’\n]*’|\"[^\"\n]*\"")
_MARKUP = re.compile(r"[*_#>`]+")
_SENTENCE_END = re.compile(r"[。！？!?]+|\.(?:\s|$)|\n")
# Saying no: cannot / will not / may not + answer, help, provide, ... .
_CANNOT = (r"(?:不能够?|无法|不可以|不可|没法|没有办法|没办法|不便|不方便|不会|不宜|难以|不予|拒绝|不被允许|不允许|"
           r"选择不|决定不|只能不|不再)")
_ACT = (r"(?:回答|答复|解答|作答|回复|回应|响应|提供|给出|给予|帮|协助|满足|完成|处理|透露|评论|置评|讨论|告知|奉告|"
        r"参与|生成|编写|撰写|写|创作|执行|支持|讲|说|谈|分享|推荐|配合|从命|照办|答应|代劳|发表|展开|表态|涉及)")
_SAID_NO = r"(?:帮不了|帮不上|做不到|办不到|无能为力|爱莫能助)"
_SPEAKER = r"(?:我|我们|本人|小编|在下|AI|助手|模型)"
# (weight, pattern, who must say it): a refusal by the speaker, a set phrase, English, and the refusal with
# no speaker at all (这个问题无法回答), which counts only when its clause is about the request.
_REFUSAL_CORE = [
    (0.6, re.compile(rf"{_SPEAKER}[^。！？\n，,]{{0,8}}?(?:{_CANNOT}[^。！？\n，,]{{0,6}}?{_ACT}|{_SAID_NO})", re.I)),
    (0.6, re.compile(r"恕难|恕不|无可奉告|不予置评|(?:不在|超出了?|超过了?)我(?:的|们的)?[^。！？\n，,]{0,6}范围|"
                     r"(?:这个|这|那)(?:个|样)?(?:恐怕|实在|可能)?(?:不行|不可以|办不到|做不到)|"
                     r"(?:就|先|暂时)?不(?:展开|讨论|评论|回答|作答|多谈|多说)了")),
    (0.6, re.compile(r"\bI(?:'m| am)?\s+(?:really\s+|afraid\s+(?:that\s+)?I\s+)?(?:can't|cannot|can not|won't|will not|"
                     r"unable to|not able to|must decline|have to decline|refuse to|don't think I can)\b", re.I)),
    (0.45, re.compile(rf"{_CANNOT}[^。！？\n，,]{{0,4}}?{_ACT}")),
]
# A clause that begins like this states a fact, a cause or a condition, not the speaker's refusal.
_NOT_A_REFUSAL_CLAUSE = re.compile(r"(?:由于|因为|如果|假如|即使|虽然|既然|有时|有时候|往往|通常|很多时候|当|除非|若|别人|他人|"
                                   r"人们|很多人|有人|他|她|它|医生|科学)")
# ... and a subjectless refusal counts only in a clause about the request (或 at the clause's start).
_ABOUT_THE_REQUEST = re.compile(r"(?:这|那|该|此|本|关于|对于|您|你|以上|上述|其|所以|因此|故|抱歉|对不起|很抱歉|非常抱歉)")
# The words after a refusal phrase that make it a mention of the words ("恕难奉告这四个字").
_MENTION = re.compile(r".{0,4}?(?:这(?:[一二两三四五六七八九十几]个字|句话|个词|个成语|种说法|个说法)(?!题)|一词|一语|的意思)")
_CLAUSE_START = re.compile(r"[，,；;：:。！？!?\n]")
_REFUSAL_SIGNS = [
    (0.15, re.compile(r"抱歉|对不起|不好意思|很遗憾|遗憾的是|请原谅|\bsorry\b|apologi[sz]e|unfortunately", re.I)),
    (0.15, re.compile(r"作为(?:一个|一名|一款)?(?:AI|人工智能|语言模型|智能助手|虚拟助手|AI助手|聊天机器人|机器人)|"
                      r"我(?:只)?是(?:一个)?(?:AI|人工智能|语言模型)|\bas an ai\b|language model", re.I)),
    (0.1, re.compile(r"敏感|违规|政策|规定|准则|不合适|不适宜|polic(?:y|ies)|guidelines?|inappropriate", re.I)),
]
_REDIRECT = re.compile(r"(?:建议|请|可以)(?:你|您)?(?:去)?(?:咨询|寻求|联系|求助|询问|查阅)|换一?个(?:问题|话题)|"
                       r"其他问题|别的问题|谅解|理解|\bconsult\b|another (?:question|topic)", re.I)
# A refusal that names the harm of the request (fraud, a crime, someone's privacy) is a considered one, the
# right answer to a harmful prompt: a reviewer's question, not a defect of the data.
_NAMES_THE_HARM = re.compile(r"诈骗|犯罪|违法|非法|刑法|刑事|侵犯|隐私|伤害|有害|危险|不道德|冒犯|歧视|暴力|色情|"
                             r"\b(?:illegal|crime|fraud|privacy|harm(?:ful)?|dangerous|unethical)\b", re.I)
# An opening that says no and then turns (但/不过/however) to this much content has answered after all.
_TURN = re.compile(r"但|不过|然而|可是|\bbut\b|\bhowever\b", re.I)
ANSWERS_AFTER = 120


def _refusal_core(head):
    """The weight of the strongest refusal said by the speaker in `head`, 0.0 when there is none."""
    best = 0.0
    for weight, pattern in _REFUSAL_CORE:
        if weight <= best:
            continue
        for match in pattern.finditer(head):
            starts = [m.end() for m in _CLAUSE_START.finditer(head, 0, match.start())]
            before = head[starts[-1] if starts else 0:match.start()].strip()
            if _MENTION.match(head, match.end()) or _NOT_A_REFUSAL_CLAUSE.match(before):
                continue
            if weight < 0.6 and before and not _ABOUT_THE_REQUEST.match(before):
                continue
            best = weight
            break
    return best


# Characters at the start of a text that the refusal check reads (its opening and what follows it).
HEAD = 1_000


def opening(text, sentences=2, limit=200):
    """The first sentences of the prose, markup and quoted words taken out."""
    text = _QUOTED.sub("", _MARKUP.sub("", prose(text[:HEAD]))).strip()
    end = 0
    for _ in range(sentences):
        match = _SENTENCE_END.search(text, end)
        if match is None:
            end = len(text)
            break
        end = match.end()
        while end < len(text) and text[end].isspace():
            end += 1
    return text[:min(end, limit)], text[min(end, limit):]


def refusal_score(text):
    """How surely the response opens by declining to answer, in [0, 1]: a refusal said by the speaker in the
    opening sentences, with the signs that come with one (an apology, "as an AI", a policy, a pointer
    elsewhere); less when it names the request's harm or turns to an answer."""
    head, rest = opening(text)
    core = _refusal_core(head)
    if core == 0.0:
        return 0.0
    score = core + sum(weight for weight, pattern in _REFUSAL_SIGNS if pattern.search(head))
    if _REDIRECT.search(head + rest[:200]):
        score += 0.1
    if _NAMES_THE_HARM.search(head + rest[:300]):
        score -= 0.35
    if _TURN.search(head) and Scripts.of(rest).units() >= ANSWERS_AFTER:
        score -= 0.4
    return round(min(max(score, 0.0), 1.0), 3)


# ------------------------------------------------------------------------------------------------ language

# A prompt that names a language may want its answer in it (翻译成英文, 用日语回答, 英文版说明书, 英语中的同义
#谚语), unless it names the language for something else: its letters, a class, or the language of material it
# describes (用英文大写字母代替, 英语老师, 一个用德语提出的问题). Languages in Latin letters are one: the checks
# tell scripts apart, not French from English.
_LANGUAGE_NAMES = {"en": r"英文|英语|法语|法文|德语|德文|西班牙语|西班牙文|葡萄牙语|意大利语|english|french|german|spanish",
                   "ja": r"日语|日文|日本語|japanese", "ko": r"韩语|韩文|朝鲜语|한국어|korean", "ru": r"俄语|俄文|russian"}
_LANGUAGES_NAMED = [(code, re.compile(rf"(?:{names})(?!\s*(?:大写|小写)?(?:字母|字符|老师|教师|课|成绩|水平|考试|专业))"
                                      rf"(?!(?:提出|写|说|表达)的)", re.I))
                    for code, names in _LANGUAGE_NAMES.items()]
_LANGUAGE_NAME = re.compile("|".join(_LANGUAGE_NAMES.values()), re.I)
_ANY_LANGUAGE = re.compile(r"翻译|译成|译为|翻成|译文|外语|外文|双语|多语|(?:多|几|各|不同的?)种?语言|\btranslat", re.I)
# A translation that sets no expectation of its own: one into Chinese (the answer is Chinese), and one a
# passage tells of (她的手语被翻译成数字化的声音: no request).
_NO_TRANSLATION_ASKED = re.compile(r"(?:翻译|译)(?:成|为|到)\s*(?:简体|繁体)?(?:中文|汉语|普通话)|被翻?译")
# Units of another language in a prompt from which an answer in it may be right.
QUOTED_LANGUAGE_UNITS = 20
# Below this many units of prose an answer says too little to be in a language.
MIN_LANGUAGE_UNITS = 8


def languages_asked(prompt_text):
    """The languages besides Chinese that a Chinese prompt makes right for its answer (all when it asks for
    a translation without naming one); None when the prompt is not Chinese and sets no expectation."""
    if Scripts.of(prose(prompt_text)).language() != "zh":
        return None
    named = set()
    if _LANGUAGE_NAME.search(prompt_text):  # one scan for the four (most prompts name none)
        named = {code for code, pattern in _LANGUAGES_NAMED if pattern.search(prompt_text)}
    if not named and _ANY_LANGUAGE.search(_NO_TRANSLATION_ASKED.sub("", prompt_text)):
        return None
    # Text in another language inside the prompt (an email to answer, a passage, a question) may be answered
    # in its language.
    quoted = Scripts.of(prompt_text).shares()
    return named | {code for code, n in quoted.items() if code != "zh" and n >= QUOTED_LANGUAGE_UNITS}


# ------------------------------------------------------------------------------------------------ reading

PROMPT_PART = 2_000


@dataclass(frozen=True)
class PromptReading:
    short_ok: bool  # the prompt asks for a short answer
    languages: frozenset | None  # languages besides Chinese it makes right; None: no expectation

    @classmethod
    def of(cls, query, system=""):
        """`query`: the prompt's last user turn; `system`: its system prompt. A long prompt is read at its
        start and end, where its instructions are."""
        if len(query) > 2 * PROMPT_PART:
            query = f"{query[:PROMPT_PART]}\n{query[-PROMPT_PART:]}"
        asked = languages_asked(f"{system}\n{query}" if system else query)
        return cls(expects_short_answer(query), None if asked is None else frozenset(asked))


@dataclass(frozen=True)
class Reading:
    cut: str
    content: int
    short_ok: bool
    refusal: float
    language: str
    off_language: float


def read(text, prompt):
    """Every check of one response to `prompt` (a PromptReading)."""
    scripts = Scripts.of(prose(text))
    return Reading(cut=cut_off(text), content=min(content_units(text), MAX_CONTENT), short_ok=prompt.short_ok,
                   refusal=refusal_score(text), language=scripts.language(),
                   off_language=_off_share(scripts, prompt.languages))


MAX_CONTENT = 32_767  # stored as a small integer: far above any threshold


def _off_share(scripts, allowed):
    """Share of the prose in languages other than Chinese and `allowed` (0 when allowed is None, or when
    there is too little prose to tell)."""
    if allowed is None or scripts.units() < MIN_LANGUAGE_UNITS:
        return 0.0
    shares = scripts.shares()
    total = sum(shares.values())
    off = sum(n for code, n in shares.items() if code != "zh" and code not in allowed)
    return round(off / total, 3) if total else 0.0


# ------------------------------------------------------------------------------------------------ storing

# Responses read and stored per transaction: ~0.1 s of reading each (see BENCHMARKS.md), so a killed
# worker loses little and the job's heartbeat stays fresh.
BATCH_SIZE = 2_000


def unread(responses):
    """The responses of a queryset without a reading of this version."""
    from .models import ResponseTextCheck

    current = ResponseTextCheck.objects.filter(response=OuterRef("pk"), version=VERSION)
    return responses.exclude(Exists(current))


def store(response_ids):
    """Read the responses with these ids and store their readings (a re-run overwrites, so it is
    idempotent); returns how many were read."""
    from annotation.models import Response

    from .models import ResponseTextCheck

    rows = Response.objects.filter(pk__in=response_ids).values_list("pk", "text", "prompt_id", "prompt__query",
                                                                    "prompt__messages")
    prompts, checks = {}, []
    for pk, text, prompt_id, query, messages in rows:
        if prompt_id not in prompts:
            system = "\n".join(m["content"] for m in messages if m.get("role") == "system")
            prompts[prompt_id] = PromptReading.of(query, system)
        checks.append(ResponseTextCheck(response_id=pk, version=VERSION, **read(text, prompts[prompt_id]).__dict__))
    ResponseTextCheck.objects.bulk_create(checks, update_conflicts=True, unique_fields=["response"],
                                          update_fields=[f for f in Reading.__dataclass_fields__] + ["version"])
    return len(checks)


def read_unread(responses, limit=None, each_batch=None):
    """Read and store the unread responses of a queryset, BATCH_SIZE at a time in id order, at most `limit`;
    `each_batch(n)` is called inside each batch's transaction (a job's commit). Returns how many were read."""
    done = 0
    while limit is None or done < limit:
        size = BATCH_SIZE if limit is None else min(BATCH_SIZE, limit - done)
        ids = list(unread(responses).order_by("pk").values_list("pk", flat=True)[:size])
        if not ids:
            break
        with transaction.atomic():
            n = store(ids)
            if each_batch is not None:
                each_batch(n)
        done += n
    return done
