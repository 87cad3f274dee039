"""Surface forms for the audit benchmark (bench/audit_data.py): how each seeded defect and each hard
negative is written. Every maker takes a `random.Random` and varies its output (several forms per
kind, phrases combined from parts), so that no rule can pass the benchmark by matching one template.

The text banks here are short pieces written for this file (refusal phrasings, answers in Japanese,
Korean, Russian and English, a bilingual sentence list); the bulk of every response is real Chinese
text from the sources that bench/audit_data.py reads.
"""

import difflib
import re
import unicodedata

HAN = "\u4e00-\u9fff\u3400-\u4dbf"
_HAN = re.compile(f"[{HAN}]")
# Sentence-final punctuation, and the closers that may follow it ("。”" ends a sentence too).
SENTENCE_FINAL = "。！？!?.…"
CLOSERS = "”’」』）)】》\"'*`"
_UNFINISHED = "，、：；,:;"
OPENERS = {"（": "）", "(": ")", "[": "]", "{": "}", "“": "”", "「": "」", "『": "』", "《": "》", "【": "】"}


def normalise(text):
    """The text folded (NFKC, one space per whitespace run): the benchmark keeps its texts distinct even
    so, although the importer merges only exactly equal texts (annotation.ingest.formats.text_hash)."""
    return " ".join(unicodedata.normalize("NFKC", text).split())


def similarity(a, b):
    """How much of two texts is shared: difflib's ratio 2·M / (len a + len b), in [0, 1]."""
    return difflib.SequenceMatcher(None, a, b, autojunk=False).ratio()


def sentences(text):
    """The text cut after each sentence end or line break, every piece kept (''.join gives the text)."""
    return [s for s in re.findall(r"[^。！？!?\n]*(?:[。！？!?]+[”’」』\"]?|\n+|$)", text, flags=re.S) if s]


def ends_a_sentence(text):
    """The text (trailing spaces ignored) ends on sentence-final punctuation, or on a closer after it."""
    t = text.rstrip()
    while t and t[-1] in CLOSERS and not t.endswith("```"):
        t = t[:-1]
    return bool(t) and t[-1] in SENTENCE_FINAL


# ---------------------------------------------------------------------------------------------------
# Tokens and truncation. A generator that runs out of max_tokens stops at a token boundary, which
# is anywhere: mid-clause, mid-word, inside a bracket or a code block. The tokenizer here is a
# stand-in for a BPE one: one token per Han character or punctuation mark, Latin words in pieces of
# up to four letters, digits in pieces of up to three, whitespace runs.

_TOKEN = re.compile(r"[A-Za-z]{1,4}|[0-9]{1,3}|\s+|.", re.S)
MAX_TOKEN_BUDGETS = (64, 96, 128, 192, 256, 384, 512)
TRUNCATION_FORMS = {"mid_sentence": 0.35, "mid_word": 0.15, "after_punct": 0.15, "open_fence": 0.15,
                    "open_bracket": 0.20}


class Deck:
    """Draws from `items` in a shuffled order, reshuffled when used up: every item appears once before any
    appears twice, so n ≥ len(items) draws show every phrasing."""

    def __init__(self, rng, items):
        self.rng, self.items, self.left = rng, list(items), []

    def draw(self):
        if not self.left:
            self.left = self.items[:]
            self.rng.shuffle(self.left)
        return self.left.pop()


def weighted_cards(shares, cards=20):
    """A deck's cards for {item: share}: each item round(share · cards) times."""
    return [item for item, share in shares.items() for _ in range(round(share * cards))]


def tokens(text):
    return _TOKEN.findall(text)


def token_boundaries(text):
    """Character offsets where a token ends (every offset a cut may fall on), in order."""
    out, at = [], 0
    for tok in tokens(text):
        at += len(tok)
        out.append(at)
    return out


def open_brackets(prefix):
    """Brackets and quotes opened and not closed in the prose of `prefix` (code blocks left out)."""
    prose = re.sub(r"```.*?```", "", prefix, flags=re.S)
    stack = []
    for ch in prose:
        if ch in OPENERS:
            stack.append(OPENERS[ch])
        elif stack and ch == stack[-1]:
            stack.pop()
    return stack


def _cut_has_form(text, at, form):
    prefix, after = text[:at], text[at:]
    last = prefix[-1]
    if ends_a_sentence(prefix) or prefix.rstrip().endswith("```") or last.isspace() or not after.strip():
        return False
    in_code = prefix.count("```") % 2 == 1
    if form == "open_fence":
        return in_code
    if in_code:
        return False
    if form == "mid_sentence":
        return bool(_HAN.match(last)) and bool(_HAN.match(after[0])) and not open_brackets(prefix)
    if form == "mid_word":
        return last.isascii() and last.isalpha() and after[0].isascii() and after[0].isalpha()
    if form == "after_punct":
        return last in _UNFINISHED
    if form == "open_bracket":
        return bool(open_brackets(prefix)) and last not in OPENERS and last not in _UNFINISHED
    raise ValueError(f"unknown truncation form {form!r}")


def truncate(text, rng, form):
    """(prefix, cut tokens) of `text` cut at a token boundary of the given form, between 30 % and 92 %
    of its tokens and as near as it gets to a max-token budget; None when the text has no such cut."""
    bounds = token_boundaries(text)
    n = len(bounds)
    lo, hi = int(n * 0.3), int(n * 0.92)
    candidates = [(i + 1, at) for i, at in enumerate(bounds[lo:hi], start=lo) if _cut_has_form(text, at, form)]
    if not candidates:
        return None
    budgets = [b for b in MAX_TOKEN_BUDGETS if lo <= b <= hi]
    if budgets and rng.random() < 0.6:
        budget = rng.choice(budgets)
        count, at = min(candidates, key=lambda c: (abs(c[0] - budget), c[0]))
    else:
        count, at = rng.choice(candidates)
    return text[:at], count


# ---------------------------------------------------------------------------------------------------
# Near-empty answers: placeholders, fillers, punctuation. (A response of whitespace alone cannot be
# imported: the importer rejects an empty field, so it never reaches a pair.)

NEAR_EMPTY = ["嗯嗯", "嗯。", "嗯", "N/A", "n/a", "（空）", "(空)", "好的。", "好的", "……", "...", "。", "？？", "无",
              "略", "暂无", "null", "None", "-", "——", "[空]", "<空>", "OK", "收到", "嗯嗯好的", "哦", "空",
              "（无）", "。。。", "！", "~", "…", "?", "[]", "{}", "（略）", "待补充", "TODO", "好", "是"]


_PADS_BEFORE = ["", "", "", " ", "\n", "  \n", "\t"]
_PADS_AFTER = ["", "", " ", "\n", "  "]


def near_empty(rng, deck=None):
    text = deck.draw() if deck else rng.choice(NEAR_EMPTY)
    if rng.random() < 0.2:
        text = text * rng.randint(2, 3)
    return rng.choice(_PADS_BEFORE) + text + rng.choice(_PADS_AFTER)


# ---------------------------------------------------------------------------------------------------
# Refusals: an opening, a core that declines, a tail; Chinese in many phrasings, and English.

REFUSAL_OPENINGS = ["", "", "抱歉，", "很抱歉，", "对不起，", "不好意思，", "非常抱歉，", "嗯……", "这个嘛，"]
REFUSAL_CORES = [
    "这个问题我不方便回答。", "恕难奉告。", "我拒绝回答这个问题。", "这个我帮不了你。", "这个问题我没办法回答。",
    "我无法回答这个问题。", "作为AI助手，我不能提供这方面的内容。", "作为一个人工智能语言模型，我无法就此发表意见。",
    "这超出了我能回答的范围。", "出于相关规定，我不能讨论这个话题。", "这个请求我无法满足。",
    "关于这个问题，我没有办法给出答复。", "我不能协助完成这个请求。", "这个话题我就不展开了。", "请原谅，我无法提供帮助。",
    "我不会回答这类问题。", "该问题涉及敏感内容，无法作答。", "无可奉告。", "这个恐怕不行。", "这事儿我真帮不上忙。",
    "我没法帮你处理这个问题。", "这个问题不在我的服务范围内。", "很遗憾，我不能满足你的要求。", "我选择不回答这个问题。",
]
REFUSAL_TAILS = ["", "", "", "建议你咨询相关专业人士。", "如果有其他问题，欢迎继续提问。", "请换一个问题吧。", "希望你能理解。",
                 "你可以查阅官方资料获取更多信息。", "谢谢理解。"]
REFUSAL_ENGLISH = ["I'm sorry, but I can't help with that.", "I cannot assist with this request.",
                   "As an AI language model, I am unable to answer this question.",
                   "Sorry, I won't be able to provide that information.", "I'm afraid I can't do that.",
                   "Unfortunately, I must decline to answer this.", "I can't share information about that topic."]


def topic_of(query):
    """A few words of the question, to mention it ("关于“…”，")."""
    head = re.split(r"[，。？！?!,\n：:]", query.strip(), maxsplit=1)[0]
    return head[:12]


def refusal(rng, query, deck=None):
    """(text, form): a refusal of the question in one of many phrasings, Chinese or English (`deck`: a Deck
    of REFUSAL_CORES to draw the Chinese core from)."""
    if rng.random() < 0.15:
        text = rng.choice(REFUSAL_ENGLISH)
        if rng.random() < 0.4:
            text += " " + rng.choice(["Please consult a professional.", "Is there anything else I can help with?",
                                      "Thank you for understanding."])
        return text, "english"
    core = deck.draw() if deck else rng.choice(REFUSAL_CORES)
    if rng.random() < 0.25:
        core = f"关于“{topic_of(query)}”，{core}"
    return f"{rng.choice(REFUSAL_OPENINGS)}{core}{rng.choice(REFUSAL_TAILS)}", "chinese"


# ---------------------------------------------------------------------------------------------------
# Answers in another language: generic assistant sentences, combined and formatted.

FOREIGN = {
    "ja": ["ご質問ありがとうございます。", "この問題にはいくつかの方法があります。", "まず、基本的な考え方を整理しましょう。",
           "次に、具体的な手順を説明します。", "毎日少しずつ続けることが大切です。", "専門家に相談することをお勧めします。",
           "以上の点に注意すれば、問題は解決できるはずです。", "詳しくは公式の資料を参照してください。",
           "結論として、状況に応じて判断する必要があります。", "何か他に質問があれば、お気軽にどうぞ。",
           "この方法の利点は、簡単で効果的なことです。", "ただし、いくつかの欠点もあります。", "例えば、時間がかかる場合があります。",
           "重要なのは、原因を正しく理解することです。", "私の考えでは、二つ目の方法が最も適しています。",
           "生活習慣を見直すことも効果的です。", "計算の結果、答えは十二になります。"],
    "ko": ["질문해 주셔서 감사합니다.", "이 문제에는 몇 가지 방법이 있습니다.", "먼저 기본 개념을 정리해 보겠습니다.",
           "다음으로 구체적인 단계를 설명하겠습니다.", "매일 조금씩 꾸준히 하는 것이 중요합니다.", "전문가와 상담하는 것을 추천합니다.",
           "위의 내용을 참고하시면 도움이 될 것입니다.", "결론적으로 상황에 따라 판단해야 합니다.",
           "다른 질문이 있으시면 언제든지 물어보세요.", "이 방법의 장점은 간단하고 효과적이라는 것입니다.",
           "하지만 몇 가지 단점도 있습니다.", "예를 들어 시간이 오래 걸릴 수 있습니다.", "가장 중요한 것은 원인을 정확히 이해하는 것입니다.",
           "생활 습관을 바꾸는 것도 도움이 됩니다."],
    "ru": ["Спасибо за ваш вопрос.", "У этой задачи есть несколько решений.",
           "Сначала разберёмся с основными понятиями.", "Далее я опишу конкретные шаги.",
           "Важно заниматься понемногу, но каждый день.", "Рекомендую обратиться к специалисту.",
           "Надеюсь, эта информация будет полезной.", "В заключение, всё зависит от конкретной ситуации.",
           "Если у вас есть другие вопросы, пожалуйста, спрашивайте.", "Преимущество этого метода в его простоте.",
           "Однако у него есть и недостатки.", "Например, это может занять много времени.",
           "Главное — правильно понять причину проблемы.", "Полезно также изменить свои привычки."],
    "en": ["Thank you for your question.", "There are several ways to approach this problem.",
           "First, let's clarify the basic concepts.", "Next, I will describe the specific steps.",
           "It is important to practice a little every day.", "I recommend consulting a professional.",
           "I hope this information is helpful.", "In conclusion, it depends on the specific situation.",
           "If you have any other questions, feel free to ask.", "The advantage of this method is its simplicity.",
           "However, it also has some drawbacks.", "For example, it may take a long time.",
           "The key is to understand the root cause correctly.", "Changing your daily habits can also help."],
}
FOREIGN_SHARES = {"ja": 0.3, "ko": 0.2, "ru": 0.2, "en": 0.3}


def foreign_answer(rng, lang, query):
    """An answer in `lang` (ja, ko, ru, en) to a Chinese question: 3-7 sentences as prose or a list,
    sometimes quoting the question's Chinese words."""
    chosen = rng.sample(FOREIGN[lang], rng.randint(3, min(7, len(FOREIGN[lang]))))
    if rng.random() < 0.3:
        chosen.insert(1, f"「{topic_of(query)}」" if lang == "ja" else f"“{topic_of(query)}”")
    if rng.random() < 0.4:
        head, *rest = chosen
        return head + "\n\n" + "\n".join(f"{i}. {s}" for i, s in enumerate(rest, 1))
    joiner = "" if lang == "ja" else " "
    return joiner.join(chosen)


# ---------------------------------------------------------------------------------------------------
# Hard negatives inside Chinese answers.

POLITE_OPENINGS = ["抱歉让你久等了！", "抱歉，刚才没看清你的问题，下面重新回答：", "很抱歉听到你遇到这样的困扰。",
                   "对不起，我上一条回答有误，更正如下：", "不好意思，回复晚了。", "抱歉，这个问题稍微有点复杂，我分几步来说。",
                   "抱歉我说得不够清楚，补充一下：", "Sorry，先说结论：", "很抱歉给您带来不便，下面是处理办法。",
                   "对不起，让你担心了。", "抱歉，先确认一下你的意思：我理解你是想问这个问题，回答如下。"]
OTHER_SENSE = ["很多人会说“我无法坚持”，其实只是方法不对。", "“对不起”三个字，有时比任何解释都管用。",
               "作为人工智能的一个分支，机器学习近年来发展很快。", "如果系统提示“无法提供服务”，先检查网络连接。",
               "有时我们不能提供完美的方案，但可以先做到够用。", "当你觉得“我不能再失败了”，压力反而会变大。",
               "说一句“抱歉，我来晚了”，气氛往往就缓和了。", "书里有句台词：“I cannot go back.”",
               "“我无法回答”并不可耻，承认不知道是学习的开始。", "作为AI绘画的爱好者，你可能也听说过这些工具。",
               "即使暂时无法提供证明，也可以先写下猜想。", "别人帮不了你的时候，就得靠自己一步步来。",
               "没办法一次做完也没关系，拆成小步就好。", "他当场拒绝回答记者的提问，这反而引起了更多猜测。",
               "恕难奉告这四个字，常见于旧时的公文。"]


def polite_opening(rng, text):
    return f"{rng.choice(POLITE_OPENINGS)}\n\n{text}"


def other_sense(rng, text):
    """`text` with a sentence that uses a refusal phrase in another sense, early (first or second sentence)."""
    line = rng.choice(OTHER_SENSE)
    parts = sentences(text)
    at = 0 if rng.random() < 0.4 or len(parts) < 2 else 1
    return "".join(parts[:at]) + line + "".join(parts[at:])


LATIN_TERMS = {
    "general": ["AI", "App", "Wi-Fi", "PPT", "KPI", "GDP", "DNA", "PM2.5", "iPhone", "Excel", "PDF", "USB", "GPS",
                "VIP",
                "deadline", "feedback", "OKR", "ROI", "MBTI", "vlog", "CEO", "IELTS", "Zoom", "Notion", "BMI", "CT"],
    "technical": ["Python", "Java", "API", "HTTP", "JSON", "SQL", "Docker", "Git", "Linux", "Transformer", "embedding",
                  "token", "GPU", "CPU", "Redis", "DataFrame", "pandas", "React", "TypeScript", "Node.js", "OAuth",
                  "LaTeX", "NumPy", "O(n log n)", "hash", "cache"],
}


def sprinkle_terms(rng, text, technical=False):
    """`text` with Latin-letter terms put in at clause breaks: "（即 API）", " Python ", "，比如 Excel、PDF，"."""
    bank = LATIN_TERMS["technical" if technical else "general"]
    parts = re.split(r"(，)", text)
    slots = [i for i, p in enumerate(parts) if p == "，"]
    picked = rng.sample(slots, min(len(slots), rng.randint(2, 6)))
    for i in picked:
        terms = rng.sample(bank, rng.randint(2 if len(picked) == 1 else 1, 3))
        bank = [t for t in bank if t not in terms]  # distinct terms: a repeated one reads as a glitch
        shapes = [f" {'、'.join(terms)} ，", f"，比如 {'、'.join(terms)}，"]
        if len(terms) == 1:
            shapes.append(f"（即 {terms[0]}），")
        parts[i] = rng.choice(shapes)
    return "".join(parts)


# Prompts asking for tools by name: the right answer is mostly Latin letters.
TOOL_LISTS = [
    ("写 Python 用什么编辑器或 IDE 比较好？", ["PyCharm", "VS Code", "Jupyter Notebook", "Spyder", "Sublime Text"]),
    ("有哪些好用的笔记软件？", ["Notion", "Obsidian", "Evernote", "OneNote", "Bear", "Logseq"]),
    ("推荐几个背英语单词的 App。", ["Anki", "Quizlet", "Duolingo", "Memrise", "Vocabulary.com"]),
    ("常见的关系型和非关系型数据库有哪些？", ["MySQL", "PostgreSQL", "SQLite", "MongoDB", "Redis", "Cassandra"]),
    ("前端开发现在主流的框架有哪些？", ["React", "Vue", "Angular", "Svelte", "Next.js"]),
    ("团队做项目管理可以用哪些工具？", ["Jira", "Trello", "Asana", "Notion", "Linear", "ClickUp"]),
    ("做设计常用哪些软件？", ["Photoshop", "Illustrator", "Figma", "Sketch", "Blender", "InDesign"]),
    ("有哪些国外的云服务商？", ["AWS", "Microsoft Azure", "Google Cloud", "DigitalOcean", "Cloudflare"]),
    ("想学机器学习，有哪些常用的库？", ["scikit-learn", "PyTorch", "TensorFlow", "XGBoost", "LightGBM", "pandas"]),
    ("视频剪辑新手用什么软件？", ["DaVinci Resolve", "Premiere Pro", "Final Cut Pro", "iMovie", "CapCut"]),
]
TOOL_NOTES = ["免费", "上手快", "功能全面", "插件多", "适合团队", "跨平台", "社区活跃", "界面简洁", "专业", "轻量"]


def tool_list_answer(rng, names):
    """A correct answer listing tools by name: terse (mostly Latin letters) or with short notes."""
    picked = rng.sample(names, rng.randint(3, len(names)))
    if rng.random() < 0.5:
        return rng.choice(["常用的有 ", "推荐：", "可以试试 "]) + "、".join(picked) + rng.choice(["。", "。", " 等。"])
    lines = [f"{i}. **{n}**：{rng.choice(TOOL_NOTES)}" for i, n in enumerate(picked, 1)]
    return rng.choice(["推荐这几个：", "按我的使用经验："]) + "\n\n" + "\n".join(lines)


# ---------------------------------------------------------------------------------------------------
# Near-identical copies of a response (75-100 % of it kept, or small edits).

CONFUSABLES = [("的", "得"), ("的", "地"), ("在", "再"), ("做", "作"), ("已", "以"), ("那", "哪"), ("他", "她"),
               ("象", "像"), ("部", "步"), ("坐", "座"), ("即", "既"), ("带", "代"), ("需", "须"), ("决", "绝"),
               ("辩", "辨"), ("份", "分"), ("到", "道"), ("和", "合"), ("是", "事"), ("有", "又")]
APPENDED = ["希望对你有帮助！", "如有疑问欢迎追问。", "以上仅供参考。", "祝你顺利！", "总之，具体还要看实际情况。",
            "好的，下面是我的回答。", "这个问题很好。"]
VARIANT_FORMS = {"drop": 0.3, "typo": 0.25, "append": 0.15, "reformat": 0.1, "drop_typo": 0.2}


def _typos(rng, text, k):
    chars = list(text)
    spots = [i for i, c in enumerate(chars) if any(c == a or c == b for a, b in CONFUSABLES)]
    for i in rng.sample(spots, min(k, len(spots))):
        a, b = next(p for p in CONFUSABLES if chars[i] in p)
        chars[i] = b if chars[i] == a else a
    if len(spots) < k:  # too few confusable characters: swap neighbouring Han characters instead
        hans = [i for i in range(len(chars) - 1) if _HAN.match(chars[i]) and _HAN.match(chars[i + 1])]
        for i in rng.sample(hans, min(k - len(spots), len(hans))):
            chars[i], chars[i + 1] = chars[i + 1], chars[i]
    return "".join(chars)


def _drop(rng, text):
    parts = sentences(text)
    droppable = [i for i in range(1, len(parts)) if parts[i].strip()]
    rng.shuffle(droppable)
    kept = set(range(len(parts)))
    for i in droppable[:rng.randint(1, 3)]:
        if sum(len(parts[j]) for j in kept - {i}) >= 0.75 * len(text):
            kept.discard(i)
    return "".join(parts[i] for i in sorted(kept))


def variant(rng, text, form):
    """A near-identical copy of `text` of the given form; None when this text allows none (the copy
    must differ from it after normalisation, or the importer would store one response)."""
    if form == "drop":
        out = _drop(rng, text)
    elif form == "typo":
        out = _typos(rng, text, rng.randint(2, 6))
    elif form == "append":
        extra = rng.choice(APPENDED)
        out = f"{extra}\n\n{text}" if rng.random() < 0.3 else f"{text}\n\n{extra}"
    elif form == "reformat":
        out = re.sub(r"\*\*(.+?)\*\*", r"\1", text).replace("。", ". ").replace("- ", "* ")
    elif form == "drop_typo":
        out = _typos(rng, _drop(rng, text), rng.randint(1, 4))
    else:
        raise ValueError(f"unknown variant form {form!r}")
    return out if normalise(out) != normalise(text) else None


# ---------------------------------------------------------------------------------------------------
# Fluent wrong answers: the text reads as well as before, but its numbers or its claims are changed.

ANTONYMS = [("增加", "减少"), ("提高", "降低"), ("正确", "错误"), ("有效", "无效"), ("大于", "小于"), ("最高", "最低"),
            ("优点", "缺点"), ("支持", "反对"), ("上升", "下降"), ("容易", "困难"), ("安全", "危险"), ("有利", "不利"),
            ("多于", "少于"), ("成立", "不成立"), ("可以", "不能"), ("应该", "不应该"), ("相同", "不同"), ("之前", "之后"),
            ("东", "西"), ("男", "女")]


def _prose_spans(text):
    """(start, end) of the text outside code blocks."""
    spans, at = [], 0
    for m in re.finditer(r"```.*?```", text, flags=re.S):
        spans.append((at, m.start()))
        at = m.end()
    spans.append((at, len(text)))
    return spans


def fluent_wrong(rng, text):
    """(text, form) with 1-3 of its last numbers changed (where an answer's result is) or claims turned
    into their opposite, outside code; None when the text has neither."""
    numbers = [(a + m.start(), m.group()) for a, b in _prose_spans(text)
               for m in re.finditer(r"\d+(?:\.\d+)?", text[a:b]) if m.group() not in ("0", "1")]
    if numbers and rng.random() < 0.6:
        out = text
        last = numbers[-4:]
        for start, old in sorted(rng.sample(last, min(len(last), rng.randint(1, 3))), reverse=True):
            new = old
            while new == old:
                new = str(int(float(old) * rng.choice([0.5, 0.8, 1.25, 2, 3])) + rng.randint(1, 9))
            out = out[:start] + new + out[start + len(old):]
        return out, "numbers"
    found = [(a, b) for a, b in ANTONYMS if a in text or b in text]
    if not found:
        return None
    out = text
    for a, b in rng.sample(found, min(len(found), rng.randint(1, 3))):
        out = out.replace(a, "\x00").replace(b, a).replace("\x00", b) if a in out else out.replace(b, a)
    return (out, "claims") if out != text else None


# ---------------------------------------------------------------------------------------------------
# Prompt edits for near-duplicates and contamination. The traditional characters are a short table
# written for this file (each checked against OpenCC's t2s when it was written), independent of any
# library a rule may use to fold scripts.

_TRADITIONAL_PAIRS = """
这這 个個 们們 为為 说說 时時 会會 来來 对對 国國 学學 发發 么麼 样樣 还還 过過 经經 问問 题題 应應 该該 请請 让讓 给給
现現 实實 进進 动動 体體 点點 开開 关關 机機 长長 门門 见見 话話 语語 认認 识識 写寫 书書 读讀 买買 卖賣 钱錢 银銀 车車
东東 头頭 马馬 鸟鳥 鱼魚 风風 飞飛 电電 脑腦 网網 络絡 计計 数數 词詞 论論 师師 线線 级級 纪紀 约約 红紅 绿綠 练練 组組
织織 结結 绝絕 统統 继繼 续續 维維 总總 历歷 记記 设設 证證 试試 详詳 谁誰 谢謝 谈談 调調 课課 议議 讲講 许許 诉訴 译譯
错錯 铁鐵 锅鍋 键鍵 镜鏡 难難 欢歡 观觀 视視 觉覺 亲親 岁歲 处處 备備 复復 务務 况況 冲衝 决決 减減 几幾 凤鳳 刘劉 则則
刚剛 创創 别別 办辦 劳勞 势勢 区區 医醫 单單 卫衛 厂廠 厅廳 压壓 县縣 参參 双雙 变變 叶葉 号號 吗嗎 听聽 员員 响響 团團
园園 围圍 图圖 圆圓 场場 坏壞 块塊 声聲 够夠 夺奪 奋奮 妈媽 孙孫 宝寶 审審 宽寬 导導 将將 层層 岛島 帅帥 带帶 帮幫 广廣
庆慶 库庫 废廢 异異 张張 弹彈 归歸 录錄 彻徹 忆憶 怀懷 态態 恋戀 恶惡 悬懸 惊驚 惯慣 战戰 扩擴 扫掃 报報 担擔 拥擁 择擇
换換 损損 据據 无無 旧舊 显顯 晓曉 杂雜 权權 条條 杨楊 极極 构構 枪槍 标標 树樹 桥橋 检檢 楼樓 欧歐 气氣 汉漢 汤湯 没沒
沟溝 济濟 测測 浓濃 热熱 烦煩 爱愛 爷爺 状狀 独獨 环環 画畫 畅暢 疗療 盖蓋 盘盤 确確 礼禮 种種 积積 称稱 穷窮 竞競 笔筆
简簡 类類 纸紙 细細 终終 罗羅 职職 联聯 胜勝 脸臉 节節 药藥 获獲 虽雖 补補 装裝 规規 览覽 讨討 训訓 访訪 评評 诗詩 询詢
负負 贡貢 财財 责責 贵貴 费費 资資 赛賽 赶趕 跃躍 轻輕 较較 辆輛 边邊 达達 迁遷 运運 远遠 连連 选選 递遞 邮郵 释釋 钢鋼
闻聞 间間 阳陽 阶階 际際 陆陸 险險 随隨 雾霧 静靜 顶頂 项項 顺順 须須 顾顧 预預 领領 频頻 颜顏 额額 饭飯 饮飲 馆館 驾駕
验驗 鲜鮮 鸡雞 麦麥 黄黃 齐齊 龙龍 习習 乐樂 乡鄉 亚亞 产產 亿億 仅僅 从從 众眾 优優 传傳 价價 伟偉 伤傷 侠俠 债債 倾傾
儿兒 兴興 养養 兰蘭 军軍 农農
"""
TRADITIONAL = {tok[0]: tok[1] for tok in _TRADITIONAL_PAIRS.split()}

PREFIXES = ["请问，", "你好！", "在吗？我想问一下：", "帮我看看：", "老师好，", "问个问题：", "Q：", "求助：", "急问，",
            "大家好，", "想请教一下，", "【提问】"]
SUFFIXES = ["谢谢！", "，急！", "，请详细回答。", "（在线等）", "？求解答", " 谢谢大家", "，越详细越好。", "～", "。麻烦了",
            "，请给出步骤。", " thx", "（不要太长）"]
SYNONYMS = [("请", "麻烦"), ("如何", "怎么"), ("什么", "啥"), ("帮我", "请帮我"), ("怎么办", "该怎么办"), ("一下", "一下下"),
            ("为什么", "为啥"), ("可以", "能"), ("吗", "么"), ("有没有", "有无")]
PROMPT_EDITS = {"traditional": 0.25, "traditional_partial": 0.1, "prefix": 0.15, "suffix": 0.15, "prefix_suffix": 0.1,
                "synonym": 0.1, "punctuation": 0.05, "traditional_suffix": 0.1}
SHORT_PROMPT = 30  # characters: below it a few added characters move a 3-gram Jaccard a long way


def to_traditional(text, rng=None, share=1.0):
    """`text` with its simplified characters of the table written in traditional script (each with
    probability `share`): the same text in another script."""
    return "".join(TRADITIONAL[c] if c in TRADITIONAL and (share >= 1 or rng.random() < share) else c for c in text)


def convertible(text):
    return sum(c in TRADITIONAL for c in text)


def edit_prompt(rng, query, form):
    """(edited query, form) of `query`; None when the form cannot change this query."""
    if form in ("traditional", "traditional_partial", "traditional_suffix"):
        if convertible(query) < 2:
            return None
        out = to_traditional(query, rng, 1.0 if form != "traditional_partial" else rng.uniform(0.4, 0.8))
        if form == "traditional_suffix":
            out += to_traditional(rng.choice(SUFFIXES))
    elif form == "prefix":
        out = rng.choice(PREFIXES) + query
    elif form == "suffix":
        out = query.rstrip() + rng.choice(SUFFIXES)
    elif form == "prefix_suffix":
        out = rng.choice(PREFIXES) + query.rstrip() + rng.choice(SUFFIXES)
    elif form == "synonym":
        found = [(a, b) for a, b in SYNONYMS if a in query]
        if not found:
            return None
        a, b = rng.choice(found)
        out = query.replace(a, b, 1)
    elif form == "punctuation":
        out = query.replace("。", ".").replace("、", ",").replace("“", "\"").replace("”", "\"")
        out = out.rstrip("？?") + rng.choice(["?", "??", "？！"]) if out.rstrip().endswith(("？", "?")) else out + "…"
    else:
        raise ValueError(f"unknown prompt edit {form!r}")
    return (out, form) if normalise(out) != normalise(query) else None


# ---------------------------------------------------------------------------------------------------
# Short-answer questions (arithmetic, multiple choice) and English tasks: hard negatives.

ARITHMETIC = [
    ("计算 {a} + {b} × {c} 的值，只写结果。", lambda a, b, c: a + b * c, "先算乘法：{b}×{c}={bc}，再加 {a}，结果是 {r}。"),
    ("{a} 乘以 {b} 等于多少？直接给出答案。", lambda a, b, c: a * b, "{a}×{b}={r}。"),
    ("一个数加上 {a} 等于 {s}，这个数是几？只回答数字。", lambda a, b, c: b, "设这个数为 x，x + {a} = {s}，所以 x = {s} − {a} = {r}。"),
    ("{c} 减去 {b} 是多少？", lambda a, b, c: c - b, "{c} − {b} = {r}。"),
    ("小明有 {c} 颗糖，分给 {b} 个同学每人 {a} 颗，还剩几颗？只写数字。", lambda a, b, c: c - a * b,
     "分掉 {a}×{b}={ab} 颗，剩下 {c} − {ab} = {r} 颗。"),
]
NUMBER_CHOICES = [("下列哪个数是质数？", lambda n: all(n % d for d in range(2, int(n ** 0.5) + 1)) and n > 1),
                  ("下列哪个数能被 7 整除？", lambda n: n % 7 == 0), ("下列哪个数是完全平方数？", lambda n: int(n ** 0.5) ** 2 == n)]
CHOICE_INSTRUCTIONS = ["只需回答选项字母。", "请直接给出答案。", "回答 A、B、C 或 D。", ""]
LETTERS = "ABCD"


def short_answer_form(rng, answer):
    """How a correct short answer is written: the bare answer most often ("7", "C")."""
    return rng.choice([answer, answer, answer, f"{answer}。", f"答案：{answer}", f"{answer}"])


def arithmetic_item(rng):
    """(query, short answer, long correct answer, long wrong answer)."""
    template, solve, steps = rng.choice(ARITHMETIC)
    while True:
        a, b, c = rng.randint(1, 9), rng.randint(2, 12), rng.randint(3, 40)
        if template.startswith("小明"):
            c = a * b + rng.randint(0, 9)
        s = a + b
        r = solve(a, b, c)
        if r >= 0:
            break
    values = {"a": a, "b": b, "c": c, "s": s, "bc": b * c, "ab": a * b}
    query = template.format(**values)
    wrong = r + rng.choice([-2, -1, 1, 2, 10])
    long_right = steps.format(**values, r=r)
    long_wrong = steps.format(**values, r=wrong) + rng.choice(["", "所以答案是 {w}。".format(w=wrong)])
    return query, str(r), long_right, long_wrong


def number_choice_item(rng):
    question, test = rng.choice(NUMBER_CHOICES)
    while True:
        options = rng.sample(range(10, 100), 4)
        right = [i for i, n in enumerate(options) if test(n)]
        if len(right) == 1:
            break
    letter = LETTERS[right[0]]
    query = question + "\n" + "\n".join(f"{LETTERS[i]}. {n}" for i, n in enumerate(options)) + "\n" + rng.choice(
        CHOICE_INSTRUCTIONS)
    wrong = rng.choice([x for x in LETTERS if x != letter])
    long_right = f"答案是 {letter}。{options[right[0]]} 符合题意，其余三个选项都不符合。"
    long_wrong = f"答案是 {wrong}。{options[LETTERS.index(wrong)]} 符合题意，其余几个都不是。"
    return query.strip(), letter, long_right, long_wrong


def _quotable(fragment):
    return "`" not in fragment and not any(c in fragment for c in "“”\"'‘’「」（）()[]{}《》【】")


def clause_choice_item(rng, passage, distractors):
    """A multiple-choice question on a real passage: which clause appears in it."""
    # options are quoted in the answers ("原文中有“…”这句话"): a fragment with a fence, bracket or quote of its
    # own would leave the answer's brackets unbalanced, a cut to any reader
    clauses = [c.strip() for c in re.split(r"[，。；！？\n]", passage) if 6 <= len(c.strip()) <= 30
               and _quotable(c)]
    distractors = [d for d in distractors if _quotable(d)]
    if not clauses or len(distractors) < 3:
        return None
    options = [rng.choice(clauses)] + rng.sample(distractors, 3)
    rng.shuffle(options)
    letter = LETTERS[options.index(next(o for o in options if o in passage))]
    instruction = rng.choice(["阅读下面的文字，判断哪一项是原文中出现过的内容。", "下面哪一句出自这段文字？",
                              "根据短文，选出原文中的句子。"])
    query = (f"{instruction}\n\n{passage.strip()}\n\n" + "\n".join(f"{LETTERS[i]}. {o}" for i, o in enumerate(options))
             + "\n\n" + rng.choice(CHOICE_INSTRUCTIONS)).strip()
    wrong = rng.choice([x for x in LETTERS if x != letter])
    long_right = f"答案是 {letter}。原文中有“{options[LETTERS.index(letter)]}”这句话，其余三项都没有出现。"
    long_wrong = f"答案是 {wrong}。文中提到了“{options[LETTERS.index(wrong)]}”的意思，所以选 {wrong}。"
    return query, letter, long_right, long_wrong


# Sentences with their English and Japanese translations (written for this file).
BILINGUAL = [
    ("今天天气很好，我们去公园散步吧。", "The weather is nice today, so let's go for a walk in the park.",
     "今日はいい天気なので、公園へ散歩に行きましょう。"),
    ("这家餐厅的菜很好吃，但是价格有点贵。", "The food at this restaurant is delicious, but it is a bit expensive.",
     "このレストランの料理はおいしいですが、少し高いです。"),
    ("我每天早上七点起床，然后去跑步。", "I get up at seven every morning and then go for a run.",
     "私は毎朝七時に起きて、それからジョギングに行きます。"),
    ("请在周五之前把报告发给我。", "Please send me the report before Friday.", "金曜日までにレポートを送ってください。"),
    ("学习一门外语需要耐心和坚持。", "Learning a foreign language takes patience and persistence.",
     "外国語を学ぶには忍耐と継続が必要です。"),
    ("会议改到下周二上午十点。", "The meeting has been moved to next Tuesday at 10 a.m.", "会議は来週の火曜日の午前十時に変更されました。"),
    ("他是我大学时最好的朋友。", "He was my best friend in college.", "彼は大学時代の一番の友達です。"),
    ("这本书讲的是一个小镇女孩的成长故事。", "This book tells the story of a girl growing up in a small town.",
     "この本は小さな町で育つ少女の物語です。"),
    ("如果明天下雨，比赛就会推迟。", "If it rains tomorrow, the match will be postponed.", "明日雨が降ったら、試合は延期されます。"),
    ("我们的产品已经出口到三十多个国家。", "Our products have been exported to more than thirty countries.",
     "当社の製品は三十か国以上に輸出されています。"),
    ("感谢您在百忙之中抽出时间参加活动。", "Thank you for taking the time to join the event despite your busy schedule.",
     "お忙しいところ、イベントにご参加いただきありがとうございます。"),
    ("保护环境是每个人的责任。", "Protecting the environment is everyone's responsibility.", "環境を守ることは一人ひとりの責任です。"),
    ("这个软件可以帮助你更好地管理时间。", "This software can help you manage your time better.",
     "このソフトは時間をよりうまく管理するのに役立ちます。"),
    ("地铁站离我家只有五分钟的路程。", "The subway station is only a five-minute walk from my home.", "駅は家から歩いて五分しかかかりません。"),
    ("她决定辞职，去国外读研究生。", "She decided to quit her job and go abroad for graduate school.",
     "彼女は仕事を辞めて、海外の大学院に進むことにしました。"),
    ("孩子们在操场上开心地踢足球。", "The children are happily playing football on the playground.",
     "子どもたちは校庭で楽しそうにサッカーをしています。"),
    ("我对这次的合作结果非常满意。", "I am very satisfied with the results of this collaboration.", "今回の協力の結果にとても満足しています。"),
    ("请问最近的医院怎么走？", "Excuse me, how do I get to the nearest hospital?", "すみません、一番近い病院へはどう行けばいいですか。"),
    ("由于天气原因，航班延误了两个小时。", "Due to the weather, the flight was delayed by two hours.", "天候のため、便は二時間遅れました。"),
    ("读书不仅能增长知识，还能开阔视野。", "Reading not only increases knowledge but also broadens one's horizons.",
     "読書は知識を増やすだけでなく、視野も広げてくれます。"),
]
TRANSLATE_EN = ["请把下面这句话翻译成英文：\n{zh}", "Translate into English: {zh}", "帮我翻译成英语：{zh}",
                "下面这段话用英文怎么说？\n{zh}", "请将以下中文译为英文，注意语法：{zh}"]
TRANSLATE_JA = ["请把下面这句话翻译成日语：\n{zh}", "帮我翻成日文：{zh}", "用日语怎么说：{zh}"]
EMAIL_PURPOSES = [
    ("向客户确认下周二上午十点的会议", "I am writing to confirm our meeting next Tuesday at 10 a.m."),
    ("向导师请假三天", "I would like to ask for three days of leave to attend a family event."),
    ("感谢面试官并询问面试结果",
     "Thank you for taking the time to interview me last week. I wonder if there is any update on the result."),
    ("通知团队项目延期一周", "I am writing to let the team know that the project deadline has been moved back by one week."),
    ("向供应商投诉货物损坏", "I am writing to report that several items in our last order arrived damaged."),
    ("邀请同事参加周五的欢送会", "You are warmly invited to the farewell party for Anna this Friday at 6 p.m."),
    ("申请访问学者职位", "I am writing to apply for the visiting scholar position in your department."),
]
EMAIL_ASKS = ["用英文写一封邮件，{purpose}。", "帮我写一封英文邮件：{purpose}。", "请写一封英文电子邮件，内容是{purpose}，语气正式一些。",
              "Write an email in English: {purpose}。"]
EMAIL_GREETINGS = ["Dear Mr. Wang,", "Dear Professor Li,", "Hi team,", "Dear Ms. Smith,", "Hello Lisa,"]
EMAIL_MIDDLES = ["I hope this email finds you well.", "Please let me know if you have any questions.",
                 "I have attached the relevant documents for your reference.",
                 "I would appreciate your reply at your earliest convenience.",
                 "Thank you for your understanding."]
EMAIL_CLOSINGS = ["Best regards,\nLi Ming", "Sincerely,\nZhang Wei", "Kind regards,\nChen Jing", "Thanks,\nWang Fang"]


def translation_item(rng, target):
    """(query, correct translation, weaker answer): translate 1-2 bank sentences into English or Japanese."""
    items = rng.sample(BILINGUAL, rng.randint(1, 2))
    zh = "".join(z for z, _e, _j in items)
    right = (" " if target == "en" else "").join(e if target == "en" else j for _z, e, j in items)
    query = rng.choice(TRANSLATE_EN if target == "en" else TRANSLATE_JA).format(zh=zh)
    weaker = rng.choice([f"这句话的意思是：{zh}", items[0][1] if target == "ja" else items[0][1].split(",")[0] + "."])
    return query, right, weaker


def email_item(rng):
    """(query, an English email, a Chinese email that ignores the instruction)."""
    zh, en = rng.choice(EMAIL_PURPOSES)
    body = [rng.choice(EMAIL_GREETINGS), "", rng.choice(EMAIL_MIDDLES[:1] + [""]), en,
            " ".join(rng.sample(EMAIL_MIDDLES[1:], 2)), "", rng.choice(EMAIL_CLOSINGS)]
    english = "\n".join(line for i, line in enumerate(body) if line or i in (1, 5)).replace("\n\n\n", "\n\n")
    chinese = f"您好：\n\n我写这封邮件是想{zh}。如有不便，敬请谅解。\n\n此致\n敬礼"
    return rng.choice(EMAIL_ASKS).format(purpose=zh), english, chinese


# Generic, on-topic but empty sentences: the "vague answer" of a prompt that has no weak answer of
# its own in the sources.
VAGUE = ["这个问题需要结合具体情况来分析。", "不同的人可能会有不同的看法。", "总的来说，这件事有利也有弊。",
         "建议多查阅一些相关资料。", "可以先从简单的地方入手，慢慢摸索。", "关键在于找到适合自己的方法。",
         "这方面的情况比较复杂，很难一概而论。", "希望以上内容对你有所帮助。", "如果还有疑问，可以再具体说说。",
         "这是一个很常见的问题。", "做好这件事需要时间和耐心。", "具体怎么做还要看你的实际需求。"]


def vague_answer(rng, good):
    """A vague answer: the good answer's first sentence, then 2-4 empty generic sentences."""
    first = sentences(good)[0].strip() if good.strip() else ""
    # a first sentence that opens a quote it closes later ("佛陀回答说：“…。") would leave it open: a cut
    keep = 4 <= len(first) <= 60 and not first.startswith(("```", "#", "|")) and not open_brackets(first)
    first = first if keep else ""
    return first + "".join(rng.sample(VAGUE, rng.randint(2, 4)))
