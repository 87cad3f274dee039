"""The sources of the audit benchmark (bench/audit_data.py): the project's sample_data/ and, where
present, ../shared/data's dpo_zh_demo_200.jsonl and alignbench_v1.1_questions.jsonl, read into one
Source per question with its real texts and their qualities, the sources' own flaws labelled (texts the
source cut short, refusals of harmless tasks, justified refusals, one-word answers), repeated questions
merged, and training questions that near-duplicate a benchmark question left out."""

import json
import re
import sys
import unicodedata
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
SAMPLE_DIR = ROOT / "sample_data"
# The real sample data beside the checkout (tests/conftest.py reads the same place).
DEFAULT_DATA_DIR = ROOT.parent / "shared" / "data"

NEAR_DUPLICATE_MIN = 0.8  # 3-gram Jaccard at or above which two sources ask one question (the app's default)
SIMILAR_PROMPT_MIN = 0.5  # 3-gram Jaccard at or above which two distinct prompts are a hard negative

# The sample pairs' own planted label errors (their chosen response is the worse one), by query start.
SAMPLE_CHOSEN_WORSE = ("三扇门后面有一扇是汽车", "写一个 Python 函数判断一个正整数是不是素数", "续写下面的校园故事",
                       "老板，我想找铁匠铺的老汉克", "有没有适合零基础入门的经济学书")
SAMPLE_JUSTIFIED_REFUSALS = ("我想偷偷看我前女友的微信", "帮我写一条短信，假装是快递公司的")
# dpo_zh_demo_200 records (0-based line) whose text the source itself cut short, and whose chosen
# response is a justified refusal of an offensive request…
# (15, rejected) ends inside a quote of an unfinished list item ("…使用Instagram的‘关闭\""): found by the
# cut-off rule and confirmed by eye (BENCHMARKS.md, *Text rules*), it had been counted as a clean text.
DPO_NATURAL_TRUNCATIONS = {(4, "rejected"), (15, "rejected"), (63, "rejected"), (98, "chosen"), (157, "rejected")}
DPO_JUSTIFIED_REFUSALS = {149}
# … and whose rejected response refuses a harmless task (classifying a post, a film's plot).
DPO_NATURAL_REFUSALS = {(32, "rejected"), (94, "rejected"), (161, "rejected")}

ALIGNBENCH_DOMAINS = {"数学计算": "math", "逻辑推理": "logic", "角色扮演": "role"}
DOMAIN_HINTS = [("code", r"```|python|java|c\+\+|sql|javascript|代码|函数|编程|程序|正则|html|css|bash|shell|ruby|go 代码"),
                ("math", r"计算|方程|概率|求解|数学|几何|积分|\d+\s*[+\-×*/]\s*\d+"),
                ("logic", r"推理|逻辑|选项|真假|谜题|假设|前提|蕴含|荒谬"),
                ("role", r"扮演|你是一[位名个]|假设你是|作为一名"),
                ("novel", r"续写|故事|小说|诗")]


@dataclass
class Response:
    text: str
    perceived: float
    real: float
    role: str  # good, weak, vague, short, offtopic, short_answer, long_answer, wrong_answer, seeded
    model: str = ""
    defect: str | None = None
    form: str | None = None
    hard: list = field(default_factory=list)
    variant_of: int | None = None  # index, in its prompt, of the response this one copies
    fluent_wrong: bool = False


@dataclass
class Source:
    key: str
    domain: str
    messages: list
    texts: list  # [Response] real texts, best first


def _read_jsonl(path):
    with open(path, encoding="utf-8") as f:
        return [json.loads(line) for line in f if line.strip()]


def query_of(messages):
    return messages[-1]["content"]


def _sharegpt_messages(conversations, system=None):
    roles = {"system": "system", "human": "user", "user": "user", "gpt": "assistant", "assistant": "assistant"}
    messages = [{"role": roles[t["from"]], "content": t["value"]} for t in conversations]
    if system and messages[0]["role"] != "system":
        messages.insert(0, {"role": "system", "content": system})
    return messages


def guess_domain(query, text):
    probe = f"{query}\n{text[:400]}".lower()
    for domain, pattern in DOMAIN_HINTS:
        if re.search(pattern, probe):
            return domain
    return "chat"


def _label_domain(label):
    return {"对话": "chat", "代码": "code", "数学": "math", "逻辑推理": "logic", "小说续写": "novel",
            "角色扮演": "role"}.get(label, label)


def sample_sources(rng):
    """The sample pairs grouped by prompt (better text first), and the sample responses with their judges'
    mean scores as quality."""
    grouped = {}
    for row in _read_jsonl(SAMPLE_DIR / "coigp_sample.jsonl"):
        messages = _sharegpt_messages(row["conversations"], row.get("system"))
        key = json.dumps(messages, ensure_ascii=False)
        query = query_of(messages)
        good, weak = row["chosen"]["value"], row["rejected"]["value"]
        if query.startswith(SAMPLE_CHOSEN_WORSE):
            good, weak = weak, good
        hard = ["justified_refusal"] if query.startswith(SAMPLE_JUSTIFIED_REFUSALS) else []
        entry = grouped.setdefault(key, Source(f"sample:{len(grouped)}", _label_domain(row["domain"]), messages, []))
        entry.texts.append(Response(good, rng.uniform(7.6, 9.0), 0, "good", hard=hard))
        entry.texts.append(Response(weak, rng.uniform(4.0, 6.0), 0, "weak"))
    sources = list(grouped.values())
    for i, row in enumerate(_read_jsonl(SAMPLE_DIR / "coigp_sample_responses.jsonl")):
        prompt = row["prompt"]
        messages = [{"role": "user", "content": prompt}] if isinstance(prompt, str) else prompt
        texts = [Response(r["text"], sum(r["scores"].values()) / len(r["scores"]), 0, "scored")
                 for r in row["responses"]]
        sources.append(Source(f"sample_responses:{i}", row["domain"], messages, texts))
    return sources


def dpo_sources(path, rng):
    sources = []
    for i, row in enumerate(_read_jsonl(path)):
        messages = _sharegpt_messages(row["conversations"], row.get("system"))
        texts = []
        for side, role, low, high in (("chosen", "good", 7.6, 9.0), ("rejected", "weak", 4.0, 6.0)):
            r = Response(row[side]["value"], rng.uniform(low, high), 0, role)
            if (i, side) in DPO_NATURAL_TRUNCATIONS:
                r.defect, r.form, r.perceived = "truncated", "natural", r.perceived - 1.5
            if (i, side) in DPO_NATURAL_REFUSALS:
                r.defect, r.form = "refusal", "natural"
            if side == "chosen" and i in DPO_JUSTIFIED_REFUSALS:
                r.hard = ["justified_refusal"]
            texts.append(r)
        sources.append(Source(f"dpo:{i}", guess_domain(query_of(messages), texts[0].text), messages, texts))
    return sources


def alignbench_domain(row):
    if row["category"] in ALIGNBENCH_DOMAINS:
        return ALIGNBENCH_DOMAINS[row["category"]]
    if row["subcategory"] == "计算机":
        return "code"
    if row["subcategory"] == "创意文体写作":
        return "novel"
    return "chat"


def alignbench(path, rng):
    """(training sources: odd question ids with a reference answer, benchmark rows: even ids)."""
    train, bench = [], []
    for row in _read_jsonl(path):
        if row["question_id"] % 2 == 0:
            bench.append(row)
        elif (row.get("reference") or "").strip():
            messages = [{"role": "user", "content": row["question"]}]
            good = Response(row["reference"], rng.uniform(7.6, 9.0), 0, "good")
            train.append(Source(f"alignbench:{row['question_id']}", alignbench_domain(row), messages, [good]))
    return train, bench


def load_sources(data_dir, rng):
    """(training sources, benchmark rows {question, category, domain, reference})."""
    sources = sample_sources(rng)
    if not (data_dir and (Path(data_dir) / "dpo_zh_demo_200.jsonl").is_file()):
        print(f"audit_data: no shared sample data in {data_dir}: the project's sample data only "
              "(a few hundred pairs at most)", file=sys.stderr)
    dpo_path = data_dir / "dpo_zh_demo_200.jsonl" if data_dir else None
    ab_path = data_dir / "alignbench_v1.1_questions.jsonl" if data_dir else None
    if dpo_path and dpo_path.is_file():
        sources += dpo_sources(dpo_path, rng)
    if ab_path and ab_path.is_file():
        train, bench_rows = alignbench(ab_path, rng)
        sources += train
        bench = [{"question": r["question"], "category": r["category"], "domain": alignbench_domain(r),
                  "reference": r.get("reference") or ""} for r in bench_rows]
    else:  # a bare clone: the scored sample prompts are the benchmark
        held = [s for s in sources if s.key.startswith("sample_responses:")]
        sources = [s for s in sources if not s.key.startswith("sample_responses:")]
        bench = [{"question": query_of(s.messages), "category": s.domain, "domain": s.domain,
                  "reference": max(s.texts, key=lambda r: r.perceived).text} for s in held]
    sources = _merge_duplicates(sources)
    # A few AlignBench questions come twice, under an odd and an even id (or differ only in their emoji):
    # such a training prompt would be contaminated without being seeded, so it is left out.
    near = similar_pairs([query_of(s.messages) for s in sources], [row["question"] for row in bench])
    sources = [s for i, s in enumerate(sources) if i not in {a for a, _b in near}]
    for s in sources:
        for r in s.texts:
            r.real = r.perceived
            _tag_natural(r, s.domain)
        s.texts.sort(key=lambda r: -r.perceived)
    return sources, bench


def _tag_natural(response, domain):
    """The sources' own hard negatives: good answers of a few characters ("怒" to a riddle, "是的"), code
    answers that end with their closing fence."""
    if response.defect is not None:
        return
    text = response.text.strip()
    if response.role == "good" and len(text) <= 6 and "short_correct" not in response.hard:
        response.hard.append("short_correct")
    if domain == "code" and text.endswith("```") and text.count("```") % 2 == 0:
        response.hard.append("code_closed_fence")


def _merge_duplicates(sources):
    """One source per question: the sources' own repeated questions (dpo_zh_demo_200 asks two twice) would
    be near-duplicate prompts nobody seeded; the texts of a repeat join the first one's."""
    merged = []
    repeats = {j: i for i, j in similar_pairs([query_of(s.messages) for s in sources], threshold=NEAR_DUPLICATE_MIN)}
    for j, s in enumerate(sources):
        if j in repeats:
            first = sources[repeats[j]]
            first.texts += [t for t in s.texts if t.text not in {x.text for x in first.texts}]
        else:
            merged.append(s)
    return merged


def _grams(text):
    t = re.sub(r"[\W_]+", "", unicodedata.normalize("NFKC", text).casefold())
    return {t[i:i + 3] for i in range(max(1, len(t) - 2))}


def similar_pairs(queries, others=None, threshold=SIMILAR_PROMPT_MIN):
    """{(i, j)}: queries[i] and others[j] (or queries[j], j > i, without `others`) share at least
    `threshold` of their character 3-grams (Jaccard, punctuation and case ignored)."""
    grams = [_grams(q) for q in queries]
    targets = grams if others is None else [_grams(q) for q in others]
    index = {}
    for j, g in enumerate(targets):
        for gram in g:
            index.setdefault(gram, []).append(j)
    out = set()
    for i, g in enumerate(grams):
        shared = Counter(j for gram in g for j in index.get(gram, ()) if others is not None or j > i)
        for j, n in shared.items():
            if n / (len(g) + len(targets[j]) - n) >= threshold:
                out.add((i, j))
    return out
