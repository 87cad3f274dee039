"""A seeded-defect benchmark for the audit rules (issue 12): COIG-P-shaped prompts with several
generated responses each, real Chinese text recombined, defects of every kind the low-quality rules and
disagreement views exist for seeded in known places, and hard negatives that no rule should flag.

    .venv/bin/python bench/audit_data.py [--pairs 3000] [--seed 1] [--data ../shared/data] [--out DIR]

Sources (bench/audit_sources.py; read, never copied into the project): the project's sample_data/
(68 prompts of pairs and 15 prompts of scored responses), and where ../shared/data is present its
dpo_zh_demo_200.jsonl (200 real pairs) and alignbench_v1.1_questions.jsonl (683 questions with reference
answers). AlignBench is split by question id: even ids are the benchmark (written to benchmark.jsonl,
imported as a benchmark dataset), odd ids are training prompts, so a re-run (any seed) never makes its
own clean prompts contaminated (the few odd questions that near-duplicate an even one are left out).
Without ../shared/data the benchmark questions are the 15 prompts of the sample responses file.
--pairs sets how many sources are used (about 5 planned pairs each): the sources allow about 3,000
pairs, the sample data alone about 340.

Each prompt gets responses the way a COIG-P pipeline would have them: its good answer, a weaker one
(the source's own, or a vague one), a short one (the good answer's first sentences), and an off-topic
one (another prompt's answer); each response has a named generator model drawn by its quality (strong
families write the good answers more often) and a *perceived* quality (what a judge that is not fooled
scores) and a *real* one (they differ only for fluent wrong answers). The scoring judges of the
loopback panel (bench/audit_judges.py) score the perceived quality plus noise, and the app builds the
pairs (gap > 2); so which pairs exist is decided the app's way, and `pair_truth` gives any pair's truth.
The sources' own flaws are labelled too: four texts dpo_zh_demo_200 cut short, three refusals of harmless
tasks, three justified refusals, one-word correct answers.

Defect kinds (a pair carries a kind when…):
- truncated: either response was cut at a max-token boundary (mid-sentence, mid-word, after a comma,
  inside a code block or a bracket); a broken generation wherever it sits;
- near_empty: either response is a placeholder, filler or punctuation ("嗯嗯", "N/A", "（空）", "好的。");
- refusal: the *chosen* response refuses a harmless question (a refusal as the rejected one is what
  preference data should teach, so that pair is clean: hard negative `refusal_rejected`);
- wrong_language: the *chosen* response is Japanese, Korean, Russian or English to a Chinese question
  (as the rejected one: clean, `wrong_language_rejected`);
- near_identical: chosen and rejected are copies of each other (similarity ≥ 0.8: a copy of 75-100 %
  of the text, typo variants, added or reformatted sentences);
- near_duplicate_prompt: the prompt is in a group of edited copies (traditional script, prefixes and
  suffixes on short prompts, synonyms, punctuation);
- contaminated: the prompt is an (edited) benchmark question;
- swapped: the chosen response is a fluent wrong answer (numbers or claims changed) and the rejected
  one is right: the panel, mostly fooled, preferred it.
Hard negatives (clean pairs): short correct answers ("7", "C"), translations into English or Japanese
and English emails, answers opening with 抱歉 that then answer, refusal phrases in another sense, code
answers ending in a closed fence, Latin-letter terms in Chinese answers, justified refusals of harmful
requests (from the sources), distinct prompts that share most of their words (one template with
other numbers, 6 faces or 8 vertices).

Output in bench/out/audit_<pairs>_seed<seed>/ (git-ignored): responses.jsonl (the import file, format
`responses`), benchmark.jsonl (format `prompts`), pairs.jsonl (the pairs the expected panel scores form,
with their truth) and truth.json (every prompt, response and planned pair, and the judges' settings).
"""

import argparse
import json
import math
import random
import re
import sys
from dataclasses import asdict, dataclass, field
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

import audit_text as tx  # noqa: E402
from audit_sources import (  # noqa: E402
    DEFAULT_DATA_DIR, Response, Source, load_sources, query_of as _query, similar_pairs)

OUT_DIR = Path(__file__).resolve().parent / "out"

DEFECT_KINDS = ("truncated", "near_empty", "refusal", "wrong_language", "near_identical", "near_duplicate_prompt",
                "contaminated", "swapped")
HARD_KINDS = ("short_correct", "english_task", "polite_sorry", "other_sense", "code_closed_fence", "latin_terms",
              "justified_refusal", "similar_prompt", "refusal_rejected", "wrong_language_rejected")

# Share of the base prompts (one per source) given each response defect; a prompt gets at most one.
RESPONSE_DEFECTS = {"truncated": 0.12, "near_empty": 0.08, "refusal": 0.08, "wrong_language": 0.08,
                    "near_identical": 0.12, "swapped": 0.12}
# Hard negatives written into a base prompt's good answer; at most one each.
ANSWER_HARD = {"polite_sorry": 0.06, "other_sense": 0.06, "latin_terms": 0.05}
CLOSED_FENCE_SHARE = 0.8  # of the code prompts whose good answer has a code block
# Prompts added, per base prompt: edited copies of base prompts, edited benchmark questions, and
# synthetic hard-negative prompts.
NEAR_DUPLICATE_SHARE = 0.04
CONTAMINATED_SHARE = 0.05
SHORT_ANSWER_SHARE = 0.07
ENGLISH_TASK_SHARE = 0.05
TOOL_LIST_SHARE = 0.02
# Planned pairs per base prompt, measured (with the prompts the shares above add): sets how many
# sources a --pairs target uses.
PAIRS_PER_BASE_PROMPT = 5.0

NEAR_IDENTICAL_MIN = 0.8  # tx.similarity at or above which two responses are copies of each other
SWAP_MARGIN = 0.5  # a pair is swapped when its chosen response is really worse by more than this
PAIR_THRESHOLD = 2.0  # the app's default build threshold (gap strictly greater)

# Generator models: (name, family, strength in [-1, 1]). A response of quality q is written by model m
# with weight exp(MODEL_SELECTIVITY · strength · (q − 5.5)): strong families write the good answers,
# so the qwen family (weak here) has the lowest mean quality, which is what hides a qwen judge's
# self-preference from a raw mean difference.
MODELS = [("gpt-4o", "gpt", 1.0), ("gpt-4o-mini", "gpt", 0.6), ("deepseek-v2", "deepseek", 0.7),
          ("deepseek-coder-v2", "deepseek", 0.4), ("glm-4", "glm", 0.3), ("chatglm3-6b", "glm", -0.6),
          ("qwen1.5-7b-chat", "qwen", -0.9), ("qwen1.5-14b-chat", "qwen", -0.6), ("yi-1.5-34b-chat", "yi", 0.1),
          ("internlm2-chat-20b", "internlm", 0.0), ("baichuan2-13b-chat", "baichuan", -0.4),
          ("moonshot-v1-8k", "moonshot", 0.5)]
MODEL_SELECTIVITY = 0.7


@dataclass(frozen=True)
class JudgeSpec:
    """A simulated judge of the loopback panel: score = round(perceived + offset + self_bias on its own
    family's responses + N(0, noise)), 1-10. A fluent wrong answer is scored at its real quality by a judge
    that catches the error (probability `catch`; `pairwise_catch` when it sees both answers side by side).
    `no_score`: share of answers without any score; `position_bias`: share of pairwise answers that pick A
    whatever the answers."""
    name: str
    family: str
    model: str
    offset: float
    noise: float
    self_bias: float = 0.0
    no_score: float = 0.0
    catch: float = 0.1
    pairwise_catch: float = 0.6
    position_bias: float = 0.0


# Noise of 1.0-1.5 points per judge gives the inter-judge agreement LLM judges have on a 1-10 scale
# (a correlation of 0.69-0.78 between two judges here, measured), so single judges do flip built pairs.
JUDGES = (
    JudgeSpec("audit-qwen", "qwen", "qwen2-72b-instruct", offset=0.2, noise=1.2, self_bias=1.8, catch=0.1,
              pairwise_catch=0.6),
    JudgeSpec("audit-gpt", "gpt", "gpt-4o-2024-08-06", offset=0.3, noise=1.0, catch=0.3, pairwise_catch=0.8),
    JudgeSpec("audit-deepseek", "deepseek", "deepseek-chat", offset=-0.4, noise=1.3, catch=0.2, pairwise_catch=0.7,
              position_bias=0.1),
    JudgeSpec("audit-glm", "glm", "glm-4-plus", offset=0.0, noise=1.5, no_score=0.06, catch=0.1,
              pairwise_catch=0.5, position_bias=0.15),
)

@dataclass
class Item:
    """A prompt with its responses, before ids are given."""
    domain: str
    messages: list
    responses: list
    source: str
    kinds: list = field(default_factory=list)  # prompt-level defect kinds
    hard: list = field(default_factory=list)
    edit: str | None = None
    group: str | None = None
    scenario: str = "clean"


# ------------------------------------------------------------------------------------------- responses

def _short(rng, good):
    """The good answer's first sentences, at most 38 % of it (so it is no near-copy): a thin answer."""
    parts = tx.sentences(good.text)
    limit = 0.38 * len(good.text)
    kept, n = [], 0
    for p in parts:
        if n + len(p) > limit:
            break
        kept.append(p)
        n += len(p)
    text = "".join(kept).strip()
    last_line = text[text.rfind("\n") + 1:].lstrip()
    # a thin answer, not a cut one: no table row, bracket or quote left open (a sentence inside a table cell
    # ends the text mid-row: the cut-off rule rightly flags that, and it would count as a clean pair)
    if (len(text) < 15 or text.count("```") % 2 or not tx.ends_a_sentence(text)
            or (last_line.startswith("|") and not last_line.endswith("|")) or tx.open_brackets(text)):
        return None
    return Response(text, rng.uniform(4.8, 6.3), 0, "short")


class Pools:
    """Texts to borrow: other prompts' good answers by domain (off-topic answers, passages)."""

    def __init__(self, sources):
        self.by_domain = {}
        for s in sources:
            self.by_domain.setdefault(s.domain, []).append(s)
        self.all = sources

    def offtopic(self, rng, source, avoid=()):
        """Another prompt's good answer (a clean one of 20 characters or more: a borrowed truncation or
        refusal would be a defect nobody seeded), as an off-topic answer to this one."""
        pool = self.by_domain.get(source.domain, [])
        if len(pool) < 5:
            pool = self.all
        for _ in range(50):
            other = rng.choice(pool)
            text = other.texts[0]
            if (other.key != source.key and other.key not in avoid and text.defect is None and not text.hard
                    and len(text.text.strip()) >= 20):
                return Response(text.text, rng.uniform(1.8, 3.2), 0, "offtopic"), other.key
        raise RuntimeError("no off-topic text to borrow")


def clean_responses(rng, source, pools):
    """The responses a pipeline would have for this prompt: its own texts, a vague one when it has a
    single text, a short one, an off-topic one."""
    out = [Response(r.text, r.perceived, r.real, r.role, defect=r.defect, form=r.form, hard=list(r.hard))
           for r in source.texts]
    good = out[0]
    if len(out) == 1:
        out.append(Response(tx.vague_answer(rng, good.text), rng.uniform(3.8, 5.2), 0, "vague"))
    short = _short(rng, good) if rng.random() < 0.8 else None
    if short is not None:
        out.append(short)
    offtopic, _key = pools.offtopic(rng, source)
    out.append(offtopic)
    return out


def _fix_real(responses):
    for r in responses:
        if not r.fluent_wrong:
            r.real = r.perceived
    return responses


def defect_shares():
    """RESPONSE_DEFECTS with truncation split by form (each form its share of the truncated prompts, on
    prompts whose texts allow it: a cut inside a code block needs code)."""
    shares = {}
    for kind, share in RESPONSE_DEFECTS.items():
        if kind == "truncated":
            shares.update({f"truncated:{form}": share * s for form, s in tx.TRUNCATION_FORMS.items()})
        else:
            shares[kind] = share
    return shares


def seed_defect(rng, kind, responses, source, pools, query, decks):
    """Put one defect of `kind` into the prompt's responses; False when this prompt cannot take it.
    `decks`: tx.Deck of the phrasings and forms to draw (refusal cores, near-empty answers, languages,
    copy forms)."""
    good = responses[0]
    if kind.startswith("truncated:"):
        form = kind.split(":", 1)[1]
        candidates = [i for i, r in enumerate(responses) if r.role in ("good", "weak", "scored") and r.defect is None
                      and len(r.text) >= 60]
        rng.shuffle(candidates)
        for i in candidates:
            cut = tx.truncate(responses[i].text, rng, form)
            if cut is None:
                continue
            src = responses[i]
            responses[i] = Response(cut[0], src.perceived - rng.uniform(1.0, 2.5), 0, "seeded", defect="truncated",
                                    form=form)
            if i == 0:  # the short answer is a prefix of the good one: keep no two prefixes
                responses[:] = [r for r in responses if r.role != "short"]
            return True
        return False
    if kind == "near_empty":
        responses.append(Response(tx.near_empty(rng, decks["near_empty"]), rng.uniform(1.0, 2.0), 0, "seeded",
                                  defect="near_empty",
                                  form="placeholder"))
        return True
    if kind in ("refusal", "wrong_language"):
        if any("justified_refusal" in r.hard for r in responses):
            return False  # a harmful request: refusing it is right
        if kind == "refusal":
            text, form = tx.refusal(rng, query, decks["refusal"])
            seeded = Response(text, rng.uniform(5.0, 6.5), 0, "seeded", defect="refusal", form=form)
        else:
            lang = decks["language"].draw()
            seeded = Response(tx.foreign_answer(rng, lang, query), rng.uniform(6.0, 7.5), 0, "seeded",
                              defect="wrong_language", form=lang)
        responses.append(seeded)
        # A second weak answer, so that the seeded one is the chosen response of some pair.
        avoid = {t.text for t in responses}
        for _ in range(5):
            extra, _key = pools.offtopic(rng, source)
            if extra.text not in avoid:
                responses.append(extra)
                break
        return True
    if kind == "near_identical":
        candidates = [i for i, r in enumerate(responses) if r.role in ("good", "weak", "scored") and r.defect is None
                      and len(tx.sentences(r.text)) >= 3]
        rng.shuffle(candidates)
        for i in candidates:
            for _ in range(4):
                form = decks["variant"].draw()
                copy = tx.variant(rng, responses[i].text, form)
                if copy is None or tx.similarity(copy, responses[i].text) < NEAR_IDENTICAL_MIN:
                    continue
                src = responses[i]
                # The panel scores the copy 2.6-3.8 points apart from its original (judges disagree with
                # themselves): below a good answer, above a weak one.
                gap = rng.uniform(2.6, 3.8)
                q = src.perceived - gap if src.perceived >= 6.5 else min(9.5, src.perceived + gap)
                responses.append(Response(copy, q, 0, "seeded", defect="near_identical", form=form, variant_of=i))
                return True
        return False
    if kind == "swapped":
        wrong = tx.fluent_wrong(rng, good.text)
        alternatives = [r for r in responses[1:] if r.role in ("weak", "vague", "short", "scored")
                        and r.perceived <= good.perceived - 2.5]
        if wrong is None or not alternatives or good.defect:
            return False
        responses[0] = Response(wrong[0], good.perceived + rng.uniform(-0.2, 0.4), rng.uniform(2.5, 3.5), "seeded",
                                defect="swapped", form=wrong[1], fluent_wrong=True)
        return True
    raise ValueError(f"unknown defect kind {kind!r}")


def seed_answer_hard(rng, kind, responses, domain):
    good = responses[0]
    if good.defect or good.hard:
        return False
    if kind == "polite_sorry":
        good.text = tx.polite_opening(rng, good.text)
    elif kind == "other_sense":
        good.text = tx.other_sense(rng, good.text)
    elif kind == "latin_terms":
        text = tx.sprinkle_terms(rng, good.text, technical=domain in ("code", "math", "logic"))
        if text == good.text:
            return False
        good.text = text
    elif kind == "code_closed_fence":
        last = good.text.rfind("```")
        if domain != "code" or good.text.count("```") < 2 or good.text.count("```") % 2:
            return False
        text = good.text[:last + 3]
        if len(text) < 0.4 * len(good.text):
            return False
        good.text = text
    else:
        raise ValueError(kind)
    good.hard.append(kind)
    return True


# ------------------------------------------------------------------------------------ synthetic prompts

def short_answer_item(rng, pools):
    pick = rng.random()
    if pick < 0.45:
        query, answer, right, wrong = tx.arithmetic_item(rng)
        domain, hard = "math", ["short_correct"]
    elif pick < 0.7:
        query, answer, right, wrong = tx.number_choice_item(rng)
        domain, hard = "logic", ["short_correct"]
    else:
        source = rng.choice(pools.all)
        parts = [p for p in tx.sentences(source.texts[0].text) if 10 <= len(p.strip()) <= 120
                 and "```" not in p and "$" not in p]
        if len(parts) < 2:
            return None
        passage = "".join(parts[:rng.randint(2, 4)])
        distractors = [c.strip() for s in rng.sample(pools.all, 12) if s.key != source.key
                       for c in re.split(r"[，。；！？\n]", s.texts[0].text) if 6 <= len(c.strip()) <= 30
                       and c.strip() not in passage][:30]
        made = tx.clause_choice_item(rng, passage, distractors)
        if made is None:
            return None
        query, answer, right, wrong = made
        domain, hard = rng.choice(["logic", "chat"]), ["short_correct"]
    responses = [Response(tx.short_answer_form(rng, answer), rng.uniform(7.5, 8.8), 0, "short_answer",
                          hard=["short_correct"]),
                 Response(right, rng.uniform(8.0, 9.0), 0, "long_answer"),
                 Response(wrong, rng.uniform(2.0, 3.5), 0, "wrong_answer")]
    return Item(domain, [{"role": "user", "content": query}], responses, "synthetic:short_answer", hard=hard,
                scenario="short_correct")


def english_task_item(rng):
    pick = rng.random()
    if pick < 0.5:
        query, right, weaker = tx.translation_item(rng, "en")
        form = "translate_en"
    elif pick < 0.65:
        query, right, weaker = tx.translation_item(rng, "ja")
        form = "translate_ja"
    else:
        query, right, weaker = tx.email_item(rng)
        form = "email_en"
    responses = [Response(right, rng.uniform(8.0, 9.0), 0, "good", form=form, hard=["english_task"]),
                 Response(weaker, rng.uniform(2.5, 4.5), 0, "weak"),
                 Response(tx.vague_answer(rng, ""), rng.uniform(2.0, 3.0), 0, "vague")]
    return Item("chat", [{"role": "user", "content": query}], responses, f"synthetic:{form}", hard=["english_task"],
                scenario="english_task")


def tool_list_item(rng, index, pools):
    query, names = tx.TOOL_LISTS[index]
    responses = [Response(tx.tool_list_answer(rng, names), rng.uniform(7.8, 8.8), 0, "good", hard=["latin_terms"]),
                 Response(tx.vague_answer(rng, ""), rng.uniform(3.8, 5.0), 0, "vague")]
    offtopic, _ = pools.offtopic(rng, Source("tools", "chat", [], []))
    responses.append(offtopic)
    return Item("code" if "Python" in query or "框架" in query else "chat", [{"role": "user", "content": query}],
                responses, "synthetic:tool_list", hard=["latin_terms"], scenario="tool_list")


# ------------------------------------------------------------------------------------ prompt-level edits

class EditDecks:
    """The prompt edits to draw, in their stated shares: short prompts mostly get added prefixes and
    suffixes (what a 3-gram check misses there); benchmark questions are sometimes copied exactly."""

    def __init__(self, rng, exact_share=0.0):
        shares = dict(tx.PROMPT_EDITS)
        short = {f: w * (3 if f in ("prefix", "suffix", "prefix_suffix") else 1) for f, w in shares.items()}
        total = sum(short.values())
        self.rng = rng
        self.long = tx.Deck(rng, tx.weighted_cards({**{f: w * (1 - exact_share) for f, w in shares.items()},
                                                     "exact": exact_share}))
        self.short = tx.Deck(rng, tx.weighted_cards({**{f: w / total * (1 - exact_share) for f, w in short.items()},
                                                      "exact": exact_share}))

    def edit(self, query):
        """(edited query, form); a form this query does not allow is drawn again."""
        deck = self.short if len(query) <= tx.SHORT_PROMPT else self.long
        for _ in range(8):
            form = deck.draw()
            if form == "exact":
                return query, "exact"
            made = tx.edit_prompt(self.rng, query, form)
            if made is not None:
                return made
        return tx.edit_prompt(self.rng, query, "suffix")


def with_query(messages, query):
    return [*messages[:-1], {**messages[-1], "content": query}]


# ------------------------------------------------------------------------------------------- assembly

def pick_model(rng, quality):
    weights = [math.exp(MODEL_SELECTIVITY * strength * (quality - 5.5)) for _n, _f, strength in MODELS]
    return rng.choices([name for name, _f, _s in MODELS], weights=weights)[0]


def expected_panel(response):
    """The mean score the panel is expected to give: what decides which pairs the app builds."""
    total = 0.0
    for j in JUDGES:
        seen = response["perceived"]
        if response["fluent_wrong"]:
            seen = j.catch * response["real"] + (1 - j.catch) * seen
        own = j.self_bias if j.family and j.family in response["model"].lower() else 0.0
        total += min(10.0, max(1.0, seen + j.offset + own))
    return total / len(JUDGES)


def _dedupe(responses):
    """Responses with distinct normalised texts (the importer stores one of equal ones), the first kept;
    variant links follow the moves."""
    seen, keep, moved = set(), [], {}
    for i, r in enumerate(responses):
        key = tx.normalise(r.text)
        if not key or key in seen:
            continue
        seen.add(key)
        moved[i] = len(keep)
        keep.append(r)
    for r in keep:
        if r.variant_of is not None:
            r.variant_of = moved.get(r.variant_of)
            if r.variant_of is None:
                r.defect = r.form = None
    return keep


def _links(responses):
    """{(i, j)} of the prompt's responses that are copies of each other: seeded variants, and any two
    texts at or above NEAR_IDENTICAL_MIN (the sources' own near-copies)."""
    links = set()
    for i, r in enumerate(responses):
        if r.variant_of is not None:
            links.add(frozenset((i, r.variant_of)))
    for i in range(len(responses)):
        for j in range(i + 1, len(responses)):
            a, b = responses[i].text, responses[j].text
            if frozenset((i, j)) in links or min(len(a), len(b)) < 0.6 * max(len(a), len(b)):
                continue
            if tx.similarity(a, b) >= NEAR_IDENTICAL_MIN:
                links.add(frozenset((i, j)))
    return links


def build(n_pairs, seed, data_dir=DEFAULT_DATA_DIR):
    """The benchmark for a target of about `n_pairs` planned pairs: {prompts, benchmark, pairs, meta}."""
    rng = random.Random(seed)
    sources, bench = load_sources(data_dir, rng)
    rng.shuffle(sources)
    # The sources' few justified refusals come first, so that every size has them.
    sources.sort(key=lambda s: not any("justified_refusal" in r.hard for r in s.texts))
    n_base = min(len(sources), max(12, math.ceil(n_pairs / PAIRS_PER_BASE_PROMPT)))
    base, spare = sources[:n_base], sources[n_base:]
    pools = Pools(sources)
    items = []
    for s in base:
        items.append(Item(s.domain, s.messages, clean_responses(rng, s, pools), s.key,
                          hard=sorted({h for r in s.texts for h in r.hard})))

    # Decks, not independent draws: each phrasing and form in its stated share whatever the seed.
    decks = {"refusal": tx.Deck(rng, tx.REFUSAL_CORES), "near_empty": tx.Deck(rng, tx.NEAR_EMPTY),
             "language": tx.Deck(rng, tx.weighted_cards(tx.FOREIGN_SHARES)),
             "variant": tx.Deck(rng, tx.weighted_cards(tx.VARIANT_FORMS))}
    wanted = {kind: round(share * n_base) for kind, share in defect_shares().items()}
    for item, kind in _assign(rng, items, wanted, lambda item, kind: seed_defect(
            rng, kind, item.responses, _source_of(base, item), pools, _query(item.messages), decks)):
        item.scenario = kind.split(":")[0]
    # Hard negatives in the good answers of prompts without a seeded defect, so that their pairs are clean.
    clean = [i for i in items if i.scenario == "clean"]
    wanted = {kind: round(share * n_base) for kind, share in ANSWER_HARD.items()}
    for item, kind in _assign(rng, clean, wanted, lambda item, kind: seed_answer_hard(rng, kind, item.responses,
                                                                                       item.domain)):
        item.scenario = kind
    for item in items:
        if item.domain == "code" and rng.random() < CLOSED_FENCE_SHARE:
            seed_answer_hard(rng, "code_closed_fence", item.responses, item.domain)

    items += _near_duplicates(rng, items, base, pools, round(NEAR_DUPLICATE_SHARE * n_base))
    items += _contaminated(rng, bench, pools, round(CONTAMINATED_SHARE * n_base))
    items += _distinct(lambda: short_answer_item(rng, pools), round(SHORT_ANSWER_SHARE * n_base))
    items += _distinct(lambda: english_task_item(rng), round(ENGLISH_TASK_SHARE * n_base))
    n_tools = min(len(tx.TOOL_LISTS), round(TOOL_LIST_SHARE * n_base))
    items += [tool_list_item(rng, i, pools) for i in rng.sample(range(len(tx.TOOL_LISTS)), n_tools)]
    return _finish(rng, items, bench, n_pairs, seed, n_base, len(spare), data_dir)


def _distinct(make, n):
    """`n` items from `make()` (None: try again) with distinct questions: a repeated synthetic question
    would be a near-duplicate nobody seeded."""
    out, seen = [], set()
    for _attempt in range(20 * n):
        if len(out) == n:
            break
        item = make()
        if item is not None and tx.normalise(_query(item.messages)) not in seen:
            seen.add(tx.normalise(_query(item.messages)))
            out.append(item)
    return out


def _source_of(base, item):
    return next(s for s in base if s.key == item.source)


def _assign(rng, items, wanted, apply):
    """Give each kind its `wanted` number of items in turn (an item one kind at most), trying items in a
    shuffled order until `apply(item, kind)` accepts. Returns [(item, kind)]."""
    order = list(items)
    rng.shuffle(order)
    taken = {}  # id(item) → (item, kind): items are mutable dataclasses, not hashable
    for kind, want in wanted.items():
        for item in order:
            if want == 0:
                break
            if id(item) in taken or not apply(item, kind):
                continue
            taken[id(item)] = (item, kind)
            want -= 1
    return list(taken.values())


def _near_duplicates(rng, items, base, pools, n):
    """Edited copies of `n` base prompts (clean responses of their own); both copies are in a group."""
    edits = EditDecks(rng)
    candidates = [i for i in items if i.source.startswith(("sample", "dpo", "alignbench"))]
    # Short prompts first in line for half the copies: added words are what a 3-gram check misses there.
    short = [i for i in candidates if len(_query(i.messages)) <= tx.SHORT_PROMPT]
    rng.shuffle(short)
    rng.shuffle(candidates)
    picked = []
    for item in short[: n // 2] + candidates:
        if len(picked) == n:
            break
        if item not in picked:
            picked.append(item)
    copies = []
    for k, item in enumerate(picked):
        query, form = edits.edit(_query(item.messages))
        source = _source_of(base, item)
        group = f"dup{k}"
        item.kinds.append("near_duplicate_prompt")
        item.group = group
        copies.append(Item(item.domain, with_query(item.messages, query), clean_responses(rng, source, pools),
                           item.source, kinds=["near_duplicate_prompt"], hard=list(item.hard), edit=form, group=group,
                           scenario="near_duplicate_prompt"))
    return copies


def _contaminated(rng, bench, pools, n):
    edits = EditDecks(rng, exact_share=0.1)
    out = []
    for row in rng.sample(bench, min(n, len(bench))):
        query, form = edits.edit(row["question"])
        good = Response(row["reference"] or tx.vague_answer(rng, ""), rng.uniform(7.6, 9.0), 0, "good")
        source = Source("benchmark", row["domain"], [{"role": "user", "content": query}], [good])
        item = Item(row["domain"], source.messages, clean_responses(rng, source, pools), "benchmark",
                    kinds=["contaminated"], edit=form, scenario="contaminated")
        out.append(item)
    return out


def _finish(rng, items, bench, n_pairs, seed, n_base, n_spare, data_dir):
    prompts, pairs, seen_prompts = [], [], set()
    for k, item in enumerate(items):
        key = tx.normalise("\x1e".join(m["content"] for m in item.messages))
        if key in seen_prompts:  # an edit that normalised away, or two sources with one question
            continue
        seen_prompts.add(key)
        responses = _fix_real(_dedupe(item.responses))
        if len(responses) < 2:
            continue
        pid = f"p{k:05d}"
        for r in responses:
            r.model = pick_model(rng, r.perceived)
        prompt = {"id": pid, "domain": item.domain, "messages": item.messages, "source": item.source,
                  "kinds": sorted(set(item.kinds)), "hard": sorted(set(item.hard)), "edit": item.edit,
                  "group": item.group, "scenario": item.scenario, "links": [],
                  "responses": [{"id": f"{pid}.{i}", **_response_dict(r)} for i, r in enumerate(responses)]}
        prompt["links"] = sorted(sorted(f"{pid}.{i}" for i in link) for link in _links(responses))
        for r in prompt["responses"]:
            r["expected_panel"] = round(expected_panel(r), 3)
        prompts.append(prompt)
    _tag_similar_prompts(prompts)
    for prompt in prompts:
        pairs += planned_pairs(prompt)
    meta = {"seed": seed, "pairs_target": n_pairs, "base_prompts": n_base, "unused_sources": n_spare,
            "data_dir": str(data_dir) if any(p["source"].startswith("dpo:") for p in prompts) else None,
            "response_defects": RESPONSE_DEFECTS, "answer_hard": ANSWER_HARD,
            "shares": {"near_duplicate": NEAR_DUPLICATE_SHARE, "contaminated": CONTAMINATED_SHARE,
                       "short_answer": SHORT_ANSWER_SHARE, "english_task": ENGLISH_TASK_SHARE,
                       "tool_list": TOOL_LIST_SHARE, "closed_fence": CLOSED_FENCE_SHARE},
            "near_identical_min": NEAR_IDENTICAL_MIN, "swap_margin": SWAP_MARGIN, "pair_threshold": PAIR_THRESHOLD,
            "judges": [asdict(j) for j in JUDGES], "models": MODELS}
    return {"meta": meta, "prompts": prompts, "benchmark": bench, "pairs": pairs}


def _tag_similar_prompts(prompts):
    """Mark distinct prompts that share most of their words (one question template with other numbers, the
    sources' own look-alikes) as the hard negative `similar_prompt`: not near-duplicates of each other."""
    for i, j in similar_pairs([_query(p["messages"]) for p in prompts]):
        a, b = prompts[i], prompts[j]
        if a["group"] is not None and a["group"] == b["group"]:
            continue
        if "contaminated" in a["kinds"] or "contaminated" in b["kinds"]:
            continue  # two edits of benchmark questions: look-alikes of the benchmark, not of each other
        for p in (a, b):
            if "similar_prompt" not in p["hard"]:
                p["hard"] = sorted([*p["hard"], "similar_prompt"])


def _response_dict(r):
    return {"text": r.text, "model": r.model, "perceived": round(r.perceived, 3), "real": round(r.real, 3),
            "role": r.role, "defect": r.defect, "form": r.form, "hard": sorted(set(r.hard)),
            "fluent_wrong": r.fluent_wrong}


# ------------------------------------------------------------------------------------------------ truth

def pair_truth(prompt, chosen, rejected):
    """(defect kinds, hard-negative kinds) of the pair chosen ≻ rejected of `prompt` (dicts as in
    truth.json): the one definition the generator's planned pairs and the harness's built pairs share."""
    kinds, hard = set(prompt["kinds"]), set(prompt["hard"])
    for side, r in (("chosen", chosen), ("rejected", rejected)):
        defect = r["defect"]
        if defect in ("truncated", "near_empty"):
            kinds.add(defect)
        elif defect in ("refusal", "wrong_language"):
            if side == "chosen":
                kinds.add(defect)
            else:
                hard.add(f"{defect}_rejected")
        hard.update(r["hard"])
    if sorted((chosen["id"], rejected["id"])) in prompt["links"]:
        kinds.add("near_identical")
    if chosen["real"] < rejected["real"] - SWAP_MARGIN:
        kinds.add("swapped")
    return sorted(kinds), sorted(hard)


def planned_pairs(prompt):
    """The pairs the expected panel scores form (gap > threshold), with their truth."""
    out = []
    rs = prompt["responses"]
    for i in range(len(rs)):
        for j in range(i + 1, len(rs)):
            a, b = rs[i], rs[j]
            # Rounded as the app rounds panel gaps before comparing them with the threshold.
            if round(abs(a["expected_panel"] - b["expected_panel"]), 3) <= PAIR_THRESHOLD:
                continue
            chosen, rejected = (a, b) if a["expected_panel"] > b["expected_panel"] else (b, a)
            kinds, hard = pair_truth(prompt, chosen, rejected)
            out.append({"key": f"{chosen['id']}>{rejected['id']}", "prompt": prompt["id"], "domain": prompt["domain"],
                        "chosen": chosen["id"], "rejected": rejected["id"], "kinds": kinds, "hard": hard,
                        "expected_gap": round(chosen["expected_panel"] - rejected["expected_panel"], 3)})
    return out


# ------------------------------------------------------------------------------------------------ files

def out_dir(n_pairs, seed):
    return OUT_DIR / f"audit_{n_pairs}_seed{seed}"


def write(benchmark, directory):
    """Write the four files; returns their paths by name."""
    directory = Path(directory)
    directory.mkdir(parents=True, exist_ok=True)
    paths = {name: directory / f"{name}.jsonl" for name in ("responses", "benchmark", "pairs")}
    paths["truth"] = directory / "truth.json"
    with open(paths["responses"], "w", encoding="utf-8") as f:
        for p in benchmark["prompts"]:
            f.write(json.dumps({"prompt": p["messages"], "domain": p["domain"],
                                "responses": [{"model": r["model"], "text": r["text"]} for r in p["responses"]]},
                               ensure_ascii=False) + "\n")
    with open(paths["benchmark"], "w", encoding="utf-8") as f:
        for row in benchmark["benchmark"]:
            f.write(json.dumps({"question": row["question"], "category": row["domain"]}, ensure_ascii=False) + "\n")
    texts = {r["id"]: r for p in benchmark["prompts"] for r in p["responses"]}
    messages = {p["id"]: p["messages"] for p in benchmark["prompts"]}
    with open(paths["pairs"], "w", encoding="utf-8") as f:
        for pair in benchmark["pairs"]:
            c, r = texts[pair["chosen"]], texts[pair["rejected"]]
            f.write(json.dumps({**pair, "prompt_messages": messages[pair["prompt"]], "chosen_text": c["text"],
                                "rejected_text": r["text"], "chosen_model": c["model"], "rejected_model": r["model"]},
                               ensure_ascii=False) + "\n")
    truth = {"meta": benchmark["meta"], "prompts": {p["id"]: p for p in benchmark["prompts"]},
             "pairs": {pair["key"]: {"kinds": pair["kinds"], "hard": pair["hard"]} for pair in benchmark["pairs"]}}
    paths["truth"].write_text(json.dumps(truth, ensure_ascii=False), encoding="utf-8")
    return paths


def summary(benchmark):
    """Counts for a person: prompts by scenario, planned pairs by kind and by hard negative."""
    by_scenario, by_kind, by_hard = {}, {}, {}
    for p in benchmark["prompts"]:
        by_scenario[p["scenario"]] = by_scenario.get(p["scenario"], 0) + 1
    for pair in benchmark["pairs"]:
        for k in pair["kinds"] or ["clean"]:
            by_kind[k] = by_kind.get(k, 0) + 1
        for h in pair["hard"] if not pair["kinds"] else []:
            by_hard[h] = by_hard.get(h, 0) + 1
    return {"prompts": len(benchmark["prompts"]), "responses": sum(len(p["responses"]) for p in benchmark["prompts"]),
            "planned_pairs": len(benchmark["pairs"]), "by_scenario": by_scenario, "pairs_by_kind": by_kind,
            "clean_pairs_by_hard_negative": by_hard}


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--pairs", type=int, default=3000, help="about this many planned pairs (default 3000)")
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument("--data", type=Path, default=DEFAULT_DATA_DIR, help="the folder with the shared sample data")
    parser.add_argument("--out", type=Path, help="output folder (default bench/out/audit_<pairs>_seed<seed>)")
    args = parser.parse_args()
    benchmark = build(args.pairs, args.seed, args.data)
    paths = write(benchmark, args.out or out_dir(args.pairs, args.seed))
    print(json.dumps(summary(benchmark), ensure_ascii=False, indent=2))
    print(f"wrote {', '.join(str(p) for p in paths.values())}")


if __name__ == "__main__":
    main()
