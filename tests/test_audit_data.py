"""The audit benchmark's generator (bench/audit_data.py, bench/audit_text.py): deterministic, every defect
and hard-negative kind present in its stated share, each defect really has its property, and the truth
file agrees with the pairs. Pure Python: no database."""

import json
import re
import sys
from collections import Counter
from functools import lru_cache
from pathlib import Path

from .conftest import ALIGNBENCH_QUESTIONS, DPO_SAMPLE, shared_data

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT / "bench"))

import audit_data  # noqa: E402
import audit_text as tx  # noqa: E402

PAIRS = 3000


@lru_cache(maxsize=4)
def _built(n_pairs, seed, data_dir):
    return audit_data.build(n_pairs, seed, Path(data_dir) if data_dir else None)


def full(seed=1):
    """The benchmark at 3,000 pairs on the real sample data (skips where ../shared/data is absent)."""
    shared_data(ALIGNBENCH_QUESTIONS)
    return _built(PAIRS, seed, str(shared_data(DPO_SAMPLE).parent))


def responses_of(bench, **where):
    return [(p, r) for p in bench["prompts"] for r in p["responses"] if all(r.get(k) == v for k, v in where.items())]


def test_the_same_seed_gives_the_same_benchmark_and_another_seed_another():
    data = str(shared_data(DPO_SAMPLE).parent)
    first = audit_data.build(800, 5, Path(data))
    again = audit_data.build(800, 5, Path(data))
    other = audit_data.build(800, 6, Path(data))
    assert json.dumps(first, ensure_ascii=False) == json.dumps(again, ensure_ascii=False)
    assert [p["messages"] for p in first["prompts"]] != [p["messages"] for p in other["prompts"]]


def test_every_defect_kind_is_seeded_in_its_stated_share():
    bench = full()
    n_base = bench["meta"]["base_prompts"]
    scenarios = Counter(p["scenario"] for p in bench["prompts"])
    wanted = Counter()
    for kind, share in audit_data.defect_shares().items():
        wanted[kind.split(":")[0]] += round(share * n_base)
    assert wanted["truncated"] == round(audit_data.RESPONSE_DEFECTS["truncated"] * n_base)
    for kind in audit_data.RESPONSE_DEFECTS:
        assert scenarios[kind] == wanted[kind], kind
    cut = Counter(r["form"] for p in bench["prompts"] if p["scenario"] == "truncated" for r in p["responses"]
                  if r["defect"] == "truncated")
    for form, share in tx.TRUNCATION_FORMS.items():
        assert cut[form] == round(audit_data.RESPONSE_DEFECTS["truncated"] * share * n_base), form
    groups = Counter(p["group"] for p in bench["prompts"] if p["group"])
    assert len(groups) == round(audit_data.NEAR_DUPLICATE_SHARE * n_base)
    assert set(groups.values()) == {2}
    assert scenarios["contaminated"] == round(audit_data.CONTAMINATED_SHARE * n_base)
    planned = Counter(k for pair in bench["pairs"] for k in pair["kinds"])
    for kind in audit_data.DEFECT_KINDS:  # enough pairs of each kind to measure a recall to a few points
        assert planned[kind] >= 60, (kind, planned[kind])
    clean = sum(1 for pair in bench["pairs"] if not pair["kinds"])
    assert 0.6 < clean / len(bench["pairs"]) < 0.8
    assert 2700 <= len(bench["pairs"]) <= 3300


def test_every_hard_negative_kind_is_present_in_clean_pairs():
    bench = full()
    n_base = bench["meta"]["base_prompts"]
    scenarios = Counter(p["scenario"] for p in bench["prompts"])
    assert scenarios["short_correct"] == round(audit_data.SHORT_ANSWER_SHARE * n_base)
    assert scenarios["english_task"] == round(audit_data.ENGLISH_TASK_SHARE * n_base)
    for kind, share in audit_data.ANSWER_HARD.items():
        assert scenarios[kind] == round(share * n_base), kind
        assert all(kind in p["responses"][0]["hard"] for p in bench["prompts"] if p["scenario"] == kind)
    hard = Counter(h for pair in bench["pairs"] if not pair["kinds"] for h in pair["hard"])
    for kind in audit_data.HARD_KINDS:
        # The sources hold three justified refusals (sample_data 2, dpo 1), and a foreign answer is rarely
        # 2 points below a good one: a few pairs each.
        assert hard[kind] >= (5 if kind in ("justified_refusal", "wrong_language_rejected") else 10), (kind, hard[kind])


def test_each_defect_comes_in_many_surface_forms():
    bench = full()
    forms = {kind: Counter(r["form"] for _p, r in responses_of(bench, defect=kind)) for kind in
             ("truncated", "near_identical", "wrong_language", "swapped", "refusal")}
    assert set(forms["truncated"]) >= set(tx.TRUNCATION_FORMS) | {"natural"}
    assert set(forms["near_identical"]) == set(tx.VARIANT_FORMS)
    assert set(forms["wrong_language"]) == {"ja", "ko", "ru", "en"}
    assert set(forms["swapped"]) == {"numbers", "claims"}
    refusals = [r["text"] for _p, r in responses_of(bench, defect="refusal")]
    assert len(set(refusals)) >= 0.9 * len(refusals)
    for phrase in ("不方便回答", "恕难奉告", "拒绝回答", "帮不了", "没办法", "作为AI"):
        assert any(phrase in t for t in refusals), phrase
    english = {r["text"] for _p, r in responses_of(bench, defect="refusal", form="english")}
    assert len(english) >= 3 and all(t.isascii() for t in english)
    empties = {r["text"].strip() for _p, r in responses_of(bench, defect="near_empty")}
    assert len(empties) >= 20 and {"嗯嗯", "N/A", "（空）", "好的。"} & empties
    edits = Counter(p["edit"] for p in bench["prompts"] if p["edit"])
    assert {"traditional", "traditional_partial", "prefix", "suffix", "prefix_suffix", "exact"} <= set(edits)


def test_a_truncated_response_is_a_proper_prefix_cut_at_a_token_boundary_before_a_sentence_ends():
    bench = full()
    sources, _bench = audit_data.load_sources(shared_data(DPO_SAMPLE).parent, __import__("random").Random(1))
    texts = {s.key: [r.text for r in s.texts] for s in sources}
    cut = [(p, r) for p, r in responses_of(bench, defect="truncated") if r["form"] != "natural"]
    assert len(cut) >= 60
    for prompt, r in cut:
        original = next(t for t in texts[prompt["source"]] if t.startswith(r["text"]) and t != r["text"])
        assert len(r["text"]) in tx.token_boundaries(original)
        assert not tx.ends_a_sentence(r["text"]) and not r["text"].rstrip().endswith("```")
        last, following = r["text"][-1], original[len(r["text"])]
        if r["form"] == "mid_word":
            assert re.match("[A-Za-z]", last) and re.match("[A-Za-z]", following)
        elif r["form"] == "mid_sentence":
            assert re.match(f"[{tx.HAN}]", last) and re.match(f"[{tx.HAN}]", following)
        elif r["form"] == "open_fence":
            assert r["text"].count("```") % 2 == 1
        elif r["form"] == "open_bracket":
            assert tx.open_brackets(r["text"])
        elif r["form"] == "after_punct":
            assert last in "，、：；,:;"


def test_a_thin_answer_ends_a_sentence_and_leaves_no_table_row_or_bracket_open():
    thin = responses_of(full(), role="short")
    assert len(thin) >= 50
    for _prompt, r in thin:
        last_line = r["text"][r["text"].rfind("\n") + 1:].lstrip()
        assert tx.ends_a_sentence(r["text"]) and not tx.open_brackets(r["text"]), r["text"][-80:]
        assert not last_line.startswith("|") or last_line.endswith("|"), r["text"][-80:]


def test_a_traditional_edit_differs_from_its_original_only_by_script():
    bench = full()
    originals = {p["group"]: p for p in bench["prompts"] if p["group"] and not p["edit"]}
    questions = [row["question"] for row in bench["benchmark"]]
    checked = 0
    for p in bench["prompts"]:
        if not (p["edit"] or "").startswith("traditional"):
            continue
        query = p["messages"][-1]["content"]
        if p["group"]:
            candidates = [originals[p["group"]]["messages"][-1]["content"]]
        else:
            candidates = [q for q in questions if len(q) <= len(query) and _only_script(q, query[:len(q)])]
        original = candidates[0]
        head = query[:len(original)]
        assert head != original and _only_script(original, head)
        if p["edit"] != "traditional_suffix":
            assert len(query) == len(original)
        checked += 1
    assert checked >= 10


def _only_script(simplified, traditional):
    return len(simplified) == len(traditional) and all(
        a == b or tx.TRADITIONAL.get(a) == b for a, b in zip(simplified, traditional))


def test_the_traditional_table_agrees_with_opencc():
    import opencc  # a dependency (the near-duplicate check folds scripts with it): never skipped

    t2s = opencc.OpenCC("t2s")
    assert {s: t2s.convert(t) for s, t in tx.TRADITIONAL.items()} == {s: s for s in tx.TRADITIONAL}


def test_prefixes_and_suffixes_keep_the_whole_original_query():
    bench = full()
    originals = {p["group"]: p for p in bench["prompts"] if p["group"] and not p["edit"]}
    short = 0
    for p in bench["prompts"]:
        if p["edit"] in ("prefix", "suffix", "prefix_suffix") and p["group"]:
            original = originals[p["group"]]["messages"][-1]["content"].rstrip()
            query = p["messages"][-1]["content"]
            assert original in query and query != original
            short += len(original) <= tx.SHORT_PROMPT
    assert short >= 3


def test_near_identical_copies_are_copies_and_other_responses_are_not():
    bench = full()
    for p in bench["prompts"]:
        rs = {r["id"]: r for r in p["responses"]}
        linked = {tuple(link) for link in p["links"]}
        for a, b in linked:
            assert tx.similarity(rs[a]["text"], rs[b]["text"]) >= audit_data.NEAR_IDENTICAL_MIN
        for r in p["responses"]:
            if r["defect"] == "near_identical":
                assert any(r["id"] in link for link in linked)
    variants = responses_of(bench, defect="near_identical")
    assert len(variants) >= 60


def test_no_two_responses_of_a_prompt_nor_two_prompts_are_one_for_the_importer():
    # The importer merges exactly equal texts only; the benchmark keeps its texts distinct even folded.
    bench = full()
    keys = set()
    for p in bench["prompts"]:
        texts = [tx.normalise(r["text"]) for r in p["responses"]]
        assert len(set(texts)) == len(texts) and all(texts)
        keys.add(tuple(tx.normalise(m["content"]) for m in p["messages"]))
    assert len(keys) == len(bench["prompts"])


def test_a_fluent_wrong_answer_reads_like_a_good_one_and_is_really_worse():
    bench = full()
    swapped = [pair for pair in bench["pairs"] if "swapped" in pair["kinds"]]
    responses = {r["id"]: r for p in bench["prompts"] for r in p["responses"]}
    assert len(swapped) >= 60
    for pair in swapped:
        chosen, rejected = responses[pair["chosen"]], responses[pair["rejected"]]
        assert chosen["fluent_wrong"] and chosen["perceived"] > rejected["perceived"] + 2
        assert chosen["real"] < rejected["real"] - audit_data.SWAP_MARGIN


def test_hard_negatives_have_their_property():
    bench = full()
    by_hard = {}
    for p, r in responses_of(bench):
        for h in r["hard"]:
            by_hard.setdefault(h, []).append((p, r))
    for _p, r in by_hard["short_correct"]:
        assert len(r["text"].strip()) <= 6
    for _p, r in by_hard["english_task"]:
        assert not re.search(f"[{tx.HAN}]", r["text"]) or r["form"] == "translate_ja"
    for _p, r in by_hard["polite_sorry"]:
        assert r["text"].startswith(tuple(tx.POLITE_OPENINGS))
    for _p, r in by_hard["other_sense"]:
        assert any(line in r["text"][:600] for line in tx.OTHER_SENSE)
    for _p, r in by_hard["code_closed_fence"]:
        assert r["text"].endswith("```") and r["text"].count("```") % 2 == 0
    terms = {t for bank in tx.LATIN_TERMS.values() for t in bank} | {n for _q, names in tx.TOOL_LISTS for n in names}
    for _p, r in by_hard["latin_terms"]:
        assert sum(t in r["text"] for t in terms) >= 2
    assert by_hard["justified_refusal"]


def test_the_written_truth_agrees_with_the_pairs_and_the_import_file(tmp_path):
    bench = full()
    paths = audit_data.write(bench, tmp_path)
    truth = json.loads(paths["truth"].read_text())
    lines = [json.loads(line) for line in paths["pairs"].read_text().splitlines()]
    assert len(lines) == len(truth["pairs"]) == len(bench["pairs"])
    for line in lines:
        prompt = truth["prompts"][line["prompt"]]
        rs = {r["id"]: r for r in prompt["responses"]}
        kinds, hard = audit_data.pair_truth(prompt, rs[line["chosen"]], rs[line["rejected"]])
        assert truth["pairs"][line["key"]] == {"kinds": kinds, "hard": hard}
        assert (line["kinds"], line["hard"]) == (kinds, hard)
        assert line["chosen_text"] == rs[line["chosen"]]["text"] and line["expected_gap"] > audit_data.PAIR_THRESHOLD
    records = [json.loads(line) for line in paths["responses"].read_text().splitlines()]
    assert [r["prompt"] for r in records] == [p["messages"] for p in truth["prompts"].values()]
    assert [[x["text"] for x in r["responses"]] for r in records] == [
        [x["text"] for x in p["responses"]] for p in truth["prompts"].values()]
    questions = [json.loads(line)["question"] for line in paths["benchmark"].read_text().splitlines()]
    assert questions == [row["question"] for row in bench["benchmark"]]


def test_a_pairs_truth_follows_the_side_its_defect_is_on():
    def response(rid, defect=None, real=5.0, hard=()):
        return {"id": rid, "defect": defect, "real": real, "hard": list(hard)}

    prompt = {"kinds": [], "hard": [], "links": [["p.0", "p.2"]]}
    good = response("p.0", real=8)
    assert audit_data.pair_truth(prompt, good, response("p.1", "refusal")) == ([], ["refusal_rejected"])
    assert audit_data.pair_truth(prompt, response("p.1", "refusal"), good) == (["refusal", "swapped"], [])
    assert audit_data.pair_truth(prompt, good, response("p.1", "truncated", real=4)) == (["truncated"], [])
    assert audit_data.pair_truth(prompt, good, response("p.2", "near_identical", real=5)) == (["near_identical"], [])
    assert audit_data.pair_truth({**prompt, "kinds": ["contaminated"]}, good, response("p.3")) == (["contaminated"], [])


def test_on_the_projects_sample_data_alone_every_kind_is_still_seeded(tmp_path):
    """A bare clone has no ../shared/data: the generator uses sample_data/, with the scored sample prompts
    as the benchmark."""
    bench = audit_data.build(300, 2, tmp_path)
    assert bench["meta"]["data_dir"] is None
    assert {p["source"].split(":")[0] for p in bench["prompts"]} <= {"sample", "synthetic", "benchmark"}
    planned = Counter(k for pair in bench["pairs"] for k in pair["kinds"])
    assert set(audit_data.DEFECT_KINDS) <= set(planned)
    assert len(bench["benchmark"]) == 15 and bench["pairs"]
    assert bench == audit_data.build(300, 2, tmp_path)
