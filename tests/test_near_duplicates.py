"""Near-duplicate prompts and benchmark contamination, on real Chinese data."""

import json
from datetime import timedelta

import numpy as np
import pytest
from django.core.management import CommandError, call_command
from django.utils import timezone

from annotation import jobs
from annotation.ingest import minhash, near_duplicates
from annotation.models import (
    ContaminationMatch,
    Dataset,
    Job,
    NearDuplicateGroup,
    NearDuplicateMember,
    Pair,
    Prompt,
    PromptSignature,
)

from .conftest import ALIGNBENCH_QUESTIONS, DPO_SAMPLE, shared_data
from .helpers import write_jsonl

DPO = [json.loads(line) for line in shared_data(DPO_SAMPLE, module=True).read_text(encoding="utf-8").splitlines()]
ALIGNBENCH = {
    row["question_id"]: row["question"]
    for row in map(json.loads, shared_data(ALIGNBENCH_QUESTIONS, module=True).read_text(encoding="utf-8").splitlines())
}
# A real query of 166 characters, and two edits of it: punctuation only, and one clause reworded.
ORIGINAL = DPO[45]["conversations"][-1]["value"]
PUNCTUATION = ORIGINAL.replace("，", ", ").replace("。", ". ")
REWORDED = ORIGINAL.replace("在什么情况下一个比另一个更合适？", "哪一个在什么场合下更合适呢？")
# AlignBench questions edited the way a copied benchmark item usually is.
CONTAMINATED = {
    141: ALIGNBENCH[141].replace(",", "，").replace("72", "80"),
    341: ALIGNBENCH[341].replace("$10元", "10元钱"),
    261: "请问" + ALIGNBENCH[261],
}


def pair_with_query(row, query):
    return dict(row, conversations=row["conversations"][:-1] + [{"from": "human", "value": query}])


def import_file(path, dataset, *args, **options):
    call_command("import_pairs", str(path), *args, dataset=dataset, no_progress=True, **options)


def import_alignbench(tmp_path, name="AlignBench"):
    path = tmp_path / "alignbench.jsonl"
    path.write_bytes(shared_data(ALIGNBENCH_QUESTIONS).read_bytes())
    import_file(path, name, "--benchmark", format="prompts")
    return Dataset.objects.get(name=name)


def test_minhash_agreement_estimates_the_jaccard_of_chinese_near_duplicates():
    texts = [ORIGINAL, PUNCTUATION, REWORDED, DPO[53]["conversations"][-1]["value"]]
    sigs = minhash.signatures(texts)
    grams = [minhash.shingles(t) for t in texts]
    for i, j in [(0, 1), (0, 2), (0, 3), (2, 3)]:
        estimate = float(np.mean(sigs[i] == sigs[j]))
        assert abs(estimate - minhash.jaccard(grams[i], grams[j])) < 0.15, (i, j)
    assert minhash.jaccard(grams[0], grams[1]) == 1.0  # punctuation and spacing do not count
    assert minhash.jaccard(grams[0], grams[3]) < 0.1


def test_lsh_proposes_near_duplicates_and_not_unrelated_real_prompts():
    queries = [row["conversations"][-1]["value"] for row in DPO[:100]]
    sigs = minhash.signatures(queries + [REWORDED])
    candidates = {tuple(pair) for pair in minhash.candidate_pairs(sigs, 0.8).tolist()}
    assert (45, 100) in candidates
    grams = [minhash.shingles(q) for q in queries + [REWORDED]]
    assert all(minhash.jaccard(grams[i], grams[j]) > 0.3 for i, j in candidates)


def test_an_import_groups_near_duplicate_prompts_and_deletes_nothing(db, tmp_path):
    rows = DPO[:46] + [pair_with_query(DPO[45], PUNCTUATION), pair_with_query(DPO[45], REWORDED)]
    report = tmp_path / "report.json"
    import_file(write_jsonl(tmp_path / "train.jsonl", rows), "train", report_json=str(report))
    dataset = Dataset.objects.get(name="train")
    job = Job.objects.get(kind="near_duplicates", dataset=dataset)
    assert job.status == Job.Status.SUCCEEDED, job.error
    # --report-json carries the check's results next to the import's.
    assert json.loads(report.read_text(encoding="utf-8"))["near_duplicates"] == {
        "status": "succeeded", "error": None, "near_duplicate_groups": 1, "prompts_in_groups": 3,
        "contaminated_prompts": 0, "benchmark_items_matched": 0}
    group = NearDuplicateGroup.objects.get(dataset=dataset)
    queries = sorted(m.prompt.query for m in group.members.select_related("prompt"))
    assert queries == sorted([ORIGINAL, PUNCTUATION, REWORDED])
    assert group.size == 3 and job.counts["near_duplicate_groups"] == 1
    assert all(0.8 <= m.similarity <= 1 for m in group.members.all())
    unique_rows = len({json.dumps(r, ensure_ascii=False) for r in rows})
    assert Pair.objects.filter(dataset=dataset).count() == unique_rows  # nothing deleted
    assert Prompt.objects.filter(dataset=dataset).count() == PromptSignature.objects.filter(dataset=dataset).count()


def test_a_second_import_signs_only_its_new_prompts(db, tmp_path):
    import_file(write_jsonl(tmp_path / "a.jsonl", DPO[:20]), "train")
    import_file(write_jsonl(tmp_path / "b.jsonl", DPO[20:30] + [pair_with_query(DPO[3], REWORDED)]), "train")
    second = Job.objects.filter(kind="near_duplicates").order_by("-pk").first()
    assert second.counts["prompts_signed"] == 11
    assert PromptSignature.objects.count() == Prompt.objects.count() == 31


def test_training_prompts_matching_alignbench_questions_are_flagged_with_the_item(db, tmp_path):
    bench = import_alignbench(tmp_path)
    assert bench.is_benchmark and bench.prompts.count() == len(ALIGNBENCH) and not bench.pairs.exists()
    rows = DPO[:30] + [pair_with_query(DPO[0], q) for q in CONTAMINATED.values()]
    import_file(write_jsonl(tmp_path / "train.jsonl", rows), "train")
    train = Dataset.objects.get(name="train")
    matches = {m.prompt.query: m for m in ContaminationMatch.objects.filter(dataset=train).select_related("prompt", "benchmark_prompt")}
    assert set(matches) == set(CONTAMINATED.values())
    for qid, query in CONTAMINATED.items():
        assert matches[query].benchmark_prompt.query == ALIGNBENCH[qid]
        assert matches[query].benchmark_prompt.dataset == bench
        # 261 is a short question with 请问 added: matched as found whole in it, at a Jaccard of 0.7
        assert matches[query].similarity >= (0.7 if qid == 261 else 0.8)


def test_importing_the_benchmark_after_the_training_data_flags_the_training_data(db, tmp_path):
    rows = DPO[:10] + [pair_with_query(DPO[0], CONTAMINATED[341])]
    import_file(write_jsonl(tmp_path / "train.jsonl", rows), "train")
    assert not ContaminationMatch.objects.exists()
    import_alignbench(tmp_path)
    match = ContaminationMatch.objects.get()
    assert match.prompt.query == CONTAMINATED[341] and match.benchmark_prompt.query == ALIGNBENCH[341]


def test_the_command_takes_a_threshold_and_one_benchmark(db, tmp_path, capsys):
    import_alignbench(tmp_path)
    rows = DPO[:10] + [pair_with_query(DPO[0], CONTAMINATED[141])]
    import_file(write_jsonl(tmp_path / "train.jsonl", rows), "train", no_near_duplicates=True)
    assert not Job.objects.filter(kind="near_duplicates", dataset__name="train").exists()
    call_command("find_near_duplicates", dataset="train", against="AlignBench", threshold=0.99, no_progress=True)
    assert not ContaminationMatch.objects.exists()  # 0.85 similar: under a 0.99 threshold
    call_command("find_near_duplicates", dataset="train", against="AlignBench", no_progress=True)
    assert ContaminationMatch.objects.get().benchmark_prompt.query == ALIGNBENCH[141]
    assert "1 prompts match 1 benchmark items" in capsys.readouterr().out
    with pytest.raises(CommandError, match="no dataset is called 'nope'"):
        call_command("find_near_duplicates", dataset="train", against="nope", no_progress=True)
    with pytest.raises(CommandError, match="threshold"):
        call_command("find_near_duplicates", dataset="train", threshold=1.5, no_progress=True)


def test_rerunning_gives_the_same_groups_not_more(db, tmp_path):
    rows = DPO[:10] + [pair_with_query(DPO[45], PUNCTUATION), DPO[45]]
    import_file(write_jsonl(tmp_path / "train.jsonl", rows), "train")
    call_command("find_near_duplicates", dataset="train", no_progress=True)
    assert NearDuplicateGroup.objects.count() == 1 and NearDuplicateMember.objects.count() == 2


def test_a_prompts_row_without_a_question_is_rejected_with_the_reason(db, tmp_path):
    path = write_jsonl(tmp_path / "bench.jsonl", [{"question": "什么是大语言模型？", "category": "基本任务"}, {"answer": "x"}])
    report = tmp_path / "r.json"
    call_command("import_pairs", str(path), dataset="b", format="prompts", report_json=str(report), no_progress=True)
    rejected = json.loads(report.read_text(encoding="utf-8"))["rejected_rows"]
    assert rejected == [{"line": 2, "reason": "a prompts row needs one of the fields prompt, question, instruction"}]
    assert Prompt.objects.get().query == "什么是大语言模型？"


# Edits of short prompts written for these tests: the same question in traditional script (wholly and in
# part), with a greeting or a thank-you added, and look-alikes from one template that ask other things.
SKY = "为什么天空是蓝色的？请用小学生能听懂的话解释。"
SKY_TRADITIONAL = "為什麼天空是藍色的？請用小學生能聽懂的話解釋。"
SKY_PART_TRADITIONAL = "为什么天空是藍色的？请用小學生能听懂的話解释。"
RICE = "怎样才能煮出好吃的米饭"
RICE_AROUND = "各位好，怎样才能煮出好吃的米饭？先谢谢啦！"
RICE_TRADITIONAL_THANKS = "怎樣才能煮出好吃的米飯？謝謝大家"
LOOK_ALIKES = [
    ("一个长方形长 8 厘米、宽 5 厘米，面积是多少？", "一个长方形长 9 厘米、宽 5 厘米，面积是多少？"),
    ("8 的平方根是多少？请保留两位小数。", "5 的平方根是多少？请保留两位小数。"),  # the first character: 0.86 unmarked
    ("从北京坐高铁到上海要几个小时？", "从北京坐高铁到广州要几个小时？"),
    ("猜一猜这组emoji说的是哪部电影：🚢🧊💑", "猜一猜这组emoji说的是哪部电影：🦁👑🐗"),
    ("请计算 25 × 48 的结果", "请计算 25 × 48 的结果再加 6"),  # the longer holds the shorter, and a number
]


def test_normalisation_folds_script_width_punctuation_and_case_but_keeps_symbols():
    assert minhash.normalise(SKY_TRADITIONAL) == minhash.normalise(SKY) == minhash.normalise(SKY_PART_TRADITIONAL)
    assert minhash.normalise("ＧＰＴ－４，你好！") == minhash.normalise("gpt 4 你好") == "gpt4你好"
    assert minhash.normalise("⾝高") == "身高"  # a Kangxi radical (as PDFs write 身) is the character
    assert minhash.normalise("1 + 2") != minhash.normalise("1 × 2")
    assert minhash.normalise(LOOK_ALIKES[2][0]) != minhash.normalise(LOOK_ALIKES[2][1])
    assert minhash.fold("為什麼") == "為什麼"  # responses are compared without the script folding


def test_a_short_prompt_with_words_added_around_it_is_a_short_copy_and_look_alikes_are_not():
    n = minhash.normalise
    assert minhash.is_short_copy(n(RICE), n(RICE_AROUND))
    assert minhash.is_short_copy(n(RICE), n(RICE_TRADITIONAL_THANKS))
    assert minhash.jaccard(minhash.shingles(RICE), minhash.shingles(RICE_AROUND)) < 0.6  # what Jaccard alone misses
    for a, b in LOOK_ALIKES:
        assert not minhash.is_short_copy(n(a), n(b)), (a, b)
        assert minhash.jaccard(minhash.shingles(a), minhash.shingles(b)) < 0.8, (a, b)
    assert not minhash.is_short_copy(n("讲个笑话"), n("讲个笑话吧"))  # under 6 characters: too little to tell
    assert not minhash.is_short_copy(n(RICE), n(RICE + "，要用电饭煲还是砂锅？火候和水量各是多少？"))  # a second question
    # a second sentence to translate is content, though short enough to pass for a thank-you by its length
    one = "请把下面这句话翻译成英文：\n他是我大学时最好的朋友。"
    assert not minhash.is_short_copy(n(one), n(one + "会议改到下周二上午十点。"))
    assert minhash.is_short_copy(n(one), n("在吗？我想问一下：" + one + "，请详细回答。"))  # 7 and 5 added


def test_a_query_copied_hundreds_of_times_gives_candidates_linear_in_its_copies():
    copies = 400
    sigs = minhash.signatures([RICE_AROUND] * copies + [RICE])
    lengths = np.array([len(minhash.normalise(RICE_AROUND))] * copies + [len(minhash.normalise(RICE))])
    assert len(minhash.candidate_pairs(sigs, 0.8)) < 2 * copies  # not copies² / 2 = 80,000
    short = minhash.short_copy_candidates(sigs, lengths)
    assert len(short) < 3 * copies and any(copies in pair for pair in short)


def test_traditional_script_and_added_words_group_short_prompts_and_look_alikes_stay_apart(db, tmp_path):
    queries = [SKY, SKY_TRADITIONAL, SKY_PART_TRADITIONAL, RICE, RICE_AROUND, RICE_TRADITIONAL_THANKS,
               *(q for pair in LOOK_ALIKES for q in pair)]
    rows = DPO[:20] + [pair_with_query(DPO[i], q) for i, q in enumerate(queries)]
    import_file(write_jsonl(tmp_path / "train.jsonl", rows), "train")
    groups = {frozenset(m.prompt.query for m in g.members.select_related("prompt"))
              for g in NearDuplicateGroup.objects.filter(dataset__name="train")}
    assert groups == {frozenset([SKY, SKY_TRADITIONAL, SKY_PART_TRADITIONAL]),
                      frozenset([RICE, RICE_AROUND, RICE_TRADITIONAL_THANKS])}
    assert PromptSignature.objects.filter(normalised_length=len(minhash.normalise(RICE))).exists()


def test_benchmark_questions_in_traditional_script_or_with_a_greeting_are_contamination(db, tmp_path):
    bench = import_alignbench(tmp_path)
    edited = {261: "世界上最早的已知計算機是什麼？",  # AlignBench 261 in traditional script
              141: "老师您好！" + ALIGNBENCH[141] + "麻烦写出过程，谢谢。"}
    rows = DPO[:10] + [pair_with_query(DPO[0], q) for q in edited.values()]
    import_file(write_jsonl(tmp_path / "train.jsonl", rows), "train")
    matches = {m.prompt.query: m.benchmark_prompt for m in ContaminationMatch.objects.filter(dataset__name="train")}
    assert {q: b.query for q, b in matches.items()} == {q: ALIGNBENCH[qid] for qid, q in edited.items()}
    assert all(b.dataset == bench for b in matches.values())


def test_signatures_of_an_older_normalisation_are_made_again_by_the_next_check(db, tmp_path):
    import_file(write_jsonl(tmp_path / "a.jsonl", DPO[:5] + [pair_with_query(DPO[0], SKY)]), "train",
                no_near_duplicates=True)
    train = Dataset.objects.get(name="train")
    # As a dataset signed before traditional characters were folded has them: old scheme, no length.
    for prompt in Prompt.objects.filter(dataset=train):
        PromptSignature.objects.create(prompt=prompt, dataset=train, scheme="char3-perm128-seed20250405-v1",
                                       minhash=minhash.signatures([prompt.query])[0].tobytes())
    import_file(write_jsonl(tmp_path / "b.jsonl", [pair_with_query(DPO[1], SKY_TRADITIONAL)]), "train")
    job = Job.objects.filter(kind="near_duplicates", dataset=train).get()
    assert job.status == Job.Status.SUCCEEDED and job.counts["prompts_signed"] == 7
    assert set(PromptSignature.objects.values_list("scheme", flat=True)) == {minhash.SCHEME}
    assert not PromptSignature.objects.filter(normalised_length=0).exists()
    assert NearDuplicateGroup.objects.get(dataset=train).size == 2


def groups_of_dataset(name):
    return {frozenset(m.prompt.query for m in g.members.select_related("prompt"))
            for g in NearDuplicateGroup.objects.filter(dataset__name=name)}


def repeated_queries_rows():
    """Pairs whose queries repeat under other system prompts (as gen_pairs writes them), edits of them and
    unrelated real prompts: repeats land in other signing chunks when the chunks are small."""
    queries = [SKY, SKY_TRADITIONAL, RICE, RICE_AROUND, ORIGINAL, PUNCTUATION, *LOOK_ALIKES[0]]
    rows = DPO[:12] + [pair_with_query(DPO[i], q) for i, q in enumerate(queries)]
    rows += [dict(pair_with_query(DPO[i], q), system=f"你是第{i}号助手。") for i, q in enumerate(queries * 2)]
    return rows


def test_the_check_signs_in_chunks_and_a_query_seen_before_gets_the_same_signature(db, tmp_path, monkeypatch):
    monkeypatch.setattr(near_duplicates, "SIGN_BATCH", 4)
    import_file(write_jsonl(tmp_path / "train.jsonl", repeated_queries_rows()), "train", no_near_duplicates=True)
    call_command("find_near_duplicates", dataset="train", no_progress=True)
    job = Job.objects.get(kind="near_duplicates")
    prompts = Prompt.objects.filter(dataset__name="train").order_by("pk")
    assert job.counts["prompts_signed"] == prompts.count() == job.done - 1
    assert job.cursor == {"after": prompts.last().pk}  # the last chunk's committed position
    for prompt in prompts:  # copied or made, every signature is the query's own
        signature = PromptSignature.objects.get(prompt=prompt)
        assert bytes(signature.minhash) == minhash.signatures([prompt.query])[0].tobytes()
        assert signature.normalised_length == len(minhash.normalise(prompt.query))
    # A look-alike asked under three system prompts is a group of its copies, apart from the other.
    assert groups_of_dataset("train") == {frozenset([SKY, SKY_TRADITIONAL]), frozenset([RICE, RICE_AROUND]),
                                          frozenset([ORIGINAL, PUNCTUATION]), *map(frozenset, zip(LOOK_ALIKES[0]))}


class WorkerDied(BaseException):
    """Escapes the job framework like a killed process: nothing after the last commit happens."""


def test_a_check_killed_while_signing_resumes_and_finds_what_an_uninterrupted_one_finds(
        db, tmp_path, monkeypatch, short_lease):
    monkeypatch.setattr(near_duplicates, "SIGN_BATCH", 5)
    import_file(write_jsonl(tmp_path / "train.jsonl", repeated_queries_rows()), "train", no_near_duplicates=True)
    train = Dataset.objects.get(name="train")
    job = jobs.create_job(near_duplicates.KIND, dataset=train, params=near_duplicates.params_for(), enqueue_it=False)

    def die_in_the_third_chunk(job_state, counts):
        if job_state.done > 10:  # inside the chunk's transaction: the third chunk never commits
            raise WorkerDied()

    with pytest.raises(WorkerDied):
        jobs.execute(job.pk, on_progress=die_in_the_third_chunk)
    job.refresh_from_db()
    assert job.status == Job.Status.RUNNING and job.done == 10 and PromptSignature.objects.count() == 10
    Job.objects.filter(pk=job.pk).update(heartbeat_at=timezone.now() - timedelta(seconds=10))
    # The resumed run has no spill file of the first run's texts: it reads and normalises those again.
    assert jobs.execute(job.pk) == Job.Status.SUCCEEDED
    job.refresh_from_db()
    assert job.counts["prompts_signed"] == Prompt.objects.filter(dataset=train).count() == job.total - 1
    resumed = groups_of_dataset("train")
    PromptSignature.objects.all().delete()
    call_command("find_near_duplicates", dataset="train", no_progress=True)
    assert groups_of_dataset("train") == resumed and len(resumed) == 5


def test_the_verification_holds_a_bounded_working_set_and_finds_the_same_groups(db, tmp_path, monkeypatch):
    rows = repeated_queries_rows() + [pair_with_query(DPO[40 + i], q) for i, q in
                                      enumerate([SKY_PART_TRADITIONAL, RICE_TRADITIONAL_THANKS, REWORDED])]
    import_file(write_jsonl(tmp_path / "train.jsonl", rows), "train")
    expected = groups_of_dataset("train")
    similarities = dict(NearDuplicateMember.objects.values_list("prompt__query", "similarity"))
    # Tiny budgets: a few texts a read, sets dropped and made again; the groups and similarities stay.
    monkeypatch.setattr(near_duplicates, "VERIFY_CHARS", 60)
    monkeypatch.setattr(near_duplicates, "READ_CHARS", 20)
    held, forget = [], near_duplicates._forget

    def forget_and_measure(cache, heap, char_count, done, chars):
        left = forget(cache, heap, char_count, done, chars)
        held.append((sum(char_count[i] for i in cache), left, chars))
        return left

    monkeypatch.setattr(near_duplicates, "_forget", forget_and_measure)
    call_command("find_near_duplicates", dataset="train", no_progress=True)
    assert groups_of_dataset("train") == expected and len(expected) == 5
    assert dict(NearDuplicateMember.objects.values_list("prompt__query", "similarity")) == similarities
    # Between reads, the sets held stay under the budget, which the texts read together exceed.
    assert all(kept == left <= 60 for kept, left, _before in held)
    assert max(before for _kept, _left, before in held) > 60 and len(held) > 3


def brute_force_bucket_pairs(key):
    """The rule bucket_pairs implements, pair by pair."""
    buckets = {}
    for i, k in enumerate(key.tolist()):
        buckets.setdefault(k, []).append(i)
    found = set()
    for members in buckets.values():
        if len(members) <= minhash.MAX_BUCKET_PAIRS:
            found.update((a, b) for n, a in enumerate(members) for b in members[n + 1 :])
        else:
            found.update(zip(members, members[1:]))
    return found


def test_bucket_pairs_takes_all_pairs_of_a_small_bucket_and_a_chain_of_a_large_one():
    rng = np.random.default_rng(7)
    # Buckets of every size from 1 to 120, shuffled together.
    key = rng.permutation(np.repeat(rng.integers(0, 2**63, 120, dtype=np.uint64), np.arange(1, 121)))
    pairs = minhash.bucket_pairs(key)
    assert {tuple(p) for p in pairs.tolist()} == brute_force_bucket_pairs(key)
    assert len(pairs) == len(brute_force_bucket_pairs(key))  # each once
    assert minhash.pairs_of_band_keys(np.stack([key, key[::-1]], axis=1)).shape[1] == 2


def test_template_heavy_prompts_get_a_bounded_number_of_candidates_each():
    # 600 distinct questions from one template: most bands put them all in one bucket.
    queries = [f"小明有{i}个苹果，小红给了他{i % 7 + 1}个，他又吃掉了两个。请问小明现在一共有多少个苹果？请写出计算过程。"
               for i in range(600)]
    sigs = minhash.signatures(queries)
    lengths = np.array([len(minhash.normalise(q)) for q in queries])
    bands, _rows = minhash.lsh_params(0.8)
    short_bands, _rows = minhash.lsh_params(minhash.SHORT_COPY_LSH_THRESHOLD)
    # The job's path: both bandings' candidates as codes, then index pairs.
    short_keys = minhash.short_keys(sigs[lengths <= minhash.SHORT_QUERY])
    codes = minhash.candidate_codes(minhash.band_keys(sigs, 0.8), short_keys, lengths)
    pairs = minhash.index_pairs(codes, 600)
    per_prompt = np.bincount(pairs.ravel(), minlength=600)
    # A prompt has at most MAX_BUCKET_PAIRS − 1 partners a band; all pairs of 600 would give each 599.
    assert per_prompt.max() <= (bands + short_bands) * (minhash.MAX_BUCKET_PAIRS - 1)
    assert len(pairs) <= 600 * (bands + short_bands) * (minhash.MAX_BUCKET_PAIRS - 1) / 2
    assert len(pairs) < 600 * 599 / 2 / 4


def test_a_query_of_punctuation_only_is_not_taken_for_the_text_after_it(db, tmp_path):
    # "？" normalises to nothing: in the job's file of texts it takes no room, where the next text starts.
    rows = DPO[:5] + [pair_with_query(DPO[5], "？"), pair_with_query(DPO[6], SKY),
                      pair_with_query(DPO[7], SKY_TRADITIONAL), pair_with_query(DPO[8], "！")]
    import_file(write_jsonl(tmp_path / "train.jsonl", rows), "train")
    assert groups_of_dataset("train") == {frozenset([SKY, SKY_TRADITIONAL]), frozenset(["？", "！"])}
