"""Files other tools write: Argilla v2 exports, Label Studio pairwise tasks, raw and binarized
UltraFeedback, HH-RLHF transcripts and TRL's implicit prompt. Each must import with the chosen and
rejected its annotators (or judge) gave, never by the order of its columns."""

import csv
import re
import json

import pyarrow as pa
import pyarrow.parquet as pq
import pytest
from django.core.management import CommandError, call_command

from annotation.ingest.formats import RowError, detect_format, parse_record
from annotation.management.commands import import_pairs as import_command
from annotation.models import Job, Judgement, Pair, Prompt, Response

from .helpers import write_jsonl
from .test_import import run_import

ANNOTATOR_1 = "5b0b6d1e-4c84-4f5c-9a55-0b3f4c1e9a01"
ANNOTATOR_2 = "0f6a2c9d-8e7b-4d21-b7c3-5e1f2a9d4b02"
ANNOTATOR_3 = "c2d4e6f8-1a3b-4c5d-8e9f-0a1b2c3d4e03"

GOOD_PYTHON = "可以用切片：`s[::-1]`，它返回一个倒序的新字符串，例如 `'你好'[::-1]` 得到 `'好你'`。"
BAD_PYTHON = "Python 没有办法反转字符串。"
GOOD_MATH = "设鸡有 x 只，兔有 y 只：x + y = 35，2x + 4y = 94，解得 x = 23，y = 12。"
BAD_MATH = "鸡 12 只，兔 23 只。"


def pair_texts(dataset):
    """{query: (chosen text, rejected text)} of the dataset's imported pairs."""
    return {p.prompt.query: (p.chosen.text, p.rejected.text)
            for p in Pair.objects.filter(dataset__name=dataset).select_related("prompt", "chosen", "rejected")}


def write_json(path, records):
    path.write_text(json.dumps(records, ensure_ascii=False, indent=2), encoding="utf-8")
    return path


# Argilla v2 -------------------------------------------------------------------------------------

def argilla_record(prompt, first, second, responses=None, suggestion=None, metadata=None):
    """One record as `dataset.records.to_json()` writes it (flatten=False)."""
    return {
        "id": f"rec-{abs(hash(prompt)) % 10_000}",
        "fields": {"prompt": prompt, "response-1": first, "response-2": second},
        "metadata": metadata or {},
        "suggestions": {"ranking": suggestion} if suggestion else {},
        "responses": {"ranking": responses} if responses else {},
        "vectors": {},
        "_server_id": "6a1f9e3c-2b4d-4e8f-9a0b-1c2d3e4f5a6b",
    }


def test_an_argilla_json_export_imports_by_the_annotators_ranking(db, tmp_path):
    records = [
        # The annotator ranked response 2 first: response 2 is chosen although it is the second field.
        argilla_record("怎样在 Python 里反转一个字符串？", BAD_PYTHON, GOOD_PYTHON, metadata={"domain": "代码"},
                       responses=[{"value": ["response-2", "response-1"], "user_id": ANNOTATOR_1,
                                   "status": "submitted"}]),
        # Two annotators agree on response 1; a discarded answer that ranked the other way does not count.
        argilla_record("鸡兔同笼，共 35 个头、94 只脚，各有几只？", GOOD_MATH, BAD_MATH, metadata={"domain": "数学"},
                       responses=[{"value": ["response-1", "response-2"], "user_id": ANNOTATOR_1,
                                   "status": "submitted"},
                                  {"value": ["response-1", "response-2"], "user_id": ANNOTATOR_2,
                                   "status": "submitted"},
                                  {"value": ["response-2", "response-1"], "user_id": ANNOTATOR_3,
                                   "status": "discarded"}]),
        # Nobody answered yet: the suggestion's ranking (a model's, like every automatic label) decides.
        argilla_record("用一句话介绍长城。", "长城是中国古代修建的军事防御工程，绵延万余里。", "长城在北京。",
                       suggestion={"value": ["response-1", "response-2"], "score": 0.9, "agent": "gpt-4o"}),
        # Pending and without a suggestion: nothing says which is better.
        argilla_record("今天天气怎么样？", "我无法获取实时天气，请查看天气预报。", "晴天。"),
    ]
    report = run_import(write_json(tmp_path / "argilla.json", records), dataset="argilla")
    assert report["imported_pairs"] == 3
    pairs = pair_texts("argilla")
    assert pairs["怎样在 Python 里反转一个字符串？"] == (GOOD_PYTHON, BAD_PYTHON)
    assert pairs["鸡兔同笼，共 35 个头、94 只脚，各有几只？"] == (GOOD_MATH, BAD_MATH)
    assert pairs["用一句话介绍长城。"][0].startswith("长城是中国古代")
    assert [(r["line"], r["reason"]) for r in report["rejected_rows"]] == [
        (4, "Argilla record with no submitted response and no suggestion (a pending or discarded record)")]
    # The domain comes from the record's metadata.
    assert Pair.objects.get(prompt__query__startswith="怎样在 Python").domain == "code"
    assert Pair.objects.get(prompt__query__startswith="鸡兔同笼").domain == "math"


def test_argilla_rankings_as_rank_values_and_ties(db):
    ranked = argilla_record("写一首关于秋天的五言绝句。", "秋风扫落叶，雁字写长空。", "秋天很凉快。", responses=[
        {"value": [{"value": "response-1", "rank": 2}, {"value": "response-2", "rank": 1}], "user_id": ANNOTATOR_1}])
    pair = parse_record(ranked, detect_format(ranked))
    assert (pair.chosen, pair.rejected) == ("秋天很凉快。", "秋风扫落叶，雁字写长空。")
    split = argilla_record("写一首关于秋天的五言绝句。", "秋风扫落叶，雁字写长空。", "秋天很凉快。", responses=[
        {"value": ["response-1", "response-2"], "user_id": ANNOTATOR_1, "status": "submitted"},
        {"value": ["response-2", "response-1"], "user_id": ANNOTATOR_2, "status": "submitted"}])
    with pytest.raises(RowError, match=r"rankings of 'ranking' tie for the best response \(response-1, response-2\)"):
        parse_record(split, "argilla")


def flattened(records):
    """Records as `dataset.records.to_datasets()` lays them out (flatten=True), with `instruction` as the
    prompt field's name."""
    rows = []
    for r in records:
        fields = r["fields"]
        answers = r["responses"].get("ranking", [])
        suggestion = r["suggestions"].get("ranking") or {}
        rows.append({
            "id": r["id"], "status": "completed" if answers else "pending", "_server_id": r["_server_id"],
            "instruction": fields["prompt"], "response-1": fields["response-1"], "response-2": fields["response-2"],
            "ranking.responses": [a["value"] for a in answers],
            "ranking.responses.users": [a["user_id"] for a in answers],
            "ranking.responses.status": [a.get("status", "submitted") for a in answers],
            "ranking.suggestion": suggestion.get("value"), "ranking.suggestion.score": suggestion.get("score"),
            "ranking.suggestion.agent": suggestion.get("agent"),
            "domain": r["metadata"].get("domain"),
        })
    return rows


FLAT_RECORDS = [
    argilla_record("怎样在 Python 里反转一个字符串？", BAD_PYTHON, GOOD_PYTHON, metadata={"domain": "代码"},
                   responses=[{"value": ["response-2", "response-1"], "user_id": ANNOTATOR_1, "status": "submitted"}]),
    argilla_record("鸡兔同笼，共 35 个头、94 只脚，各有几只？", GOOD_MATH, BAD_MATH, metadata={"domain": "数学"},
                   responses=[{"value": ["response-1", "response-2"], "user_id": ANNOTATOR_2, "status": "submitted"}]),
]


def test_a_flattened_argilla_export_mapped_with_columns_keeps_the_annotators_preference(db, tmp_path):
    path = tmp_path / "argilla.parquet"
    pq.write_table(pa.Table.from_pylist(flattened(FLAT_RECORDS)), path)
    # The mapping names response-1 "chosen"; the annotator ranked response 2 first, and that decides.
    report = run_import(path, dataset="flat", columns="prompt=instruction,chosen=response-1,rejected=response-2")
    assert report["imported_pairs"] == 2 and report["rejected_rows"] == []
    pairs = pair_texts("flat")
    assert pairs["怎样在 Python 里反转一个字符串？"] == (GOOD_PYTHON, BAD_PYTHON)
    assert pairs["鸡兔同笼，共 35 个头、94 只脚，各有几只？"] == (GOOD_MATH, BAD_MATH)
    assert report["by_domain"] == {"code": {"prompts": 1, "pairs": 1}, "math": {"prompts": 1, "pairs": 1}}


def test_a_flattened_argilla_export_as_jsonl_or_csv_is_detected_without_a_mapping(db, tmp_path):
    rows = flattened(FLAT_RECORDS)
    jsonl = write_jsonl(tmp_path / "argilla.jsonl", rows)
    assert detect_format(rows[0]) == "argilla"
    assert run_import(jsonl, dataset="jsonl")["imported_pairs"] == 2
    assert pair_texts("jsonl")["怎样在 Python 里反转一个字符串？"] == (GOOD_PYTHON, BAD_PYTHON)
    path = tmp_path / "argilla.csv"
    with open(path, "w", encoding="utf-8", newline="") as f:
        writer = csv.DictWriter(f, fieldnames=list(rows[0]))
        writer.writeheader()
        for row in rows:
            writer.writerow({k: json.dumps(v, ensure_ascii=False) if isinstance(v, list) else v
                             for k, v in row.items()})
    assert run_import(path, dataset="csv")["imported_pairs"] == 2
    assert pair_texts("csv") == pair_texts("jsonl")


# Label Studio -----------------------------------------------------------------------------------

def label_studio_task(task_id, prompt, answer1, answer2, *selections, cancelled=()):
    """A task of the JSON export of a project with the pairwise template
    (`<Pairwise name="comparison" toName="answer1,answer2"/>`)."""
    annotations = [{
        "id": task_id * 10 + i, "completed_by": i + 1, "was_cancelled": i in cancelled,
        "result": [{"id": f"r{task_id}{i}", "type": "pairwise", "from_name": "comparison", "to_name": "comparison",
                    "origin": "manual", "value": {"selected": side}}],
    } for i, side in enumerate(selections)]
    return {"id": task_id, "data": {"prompt": prompt, "answer1": answer1, "answer2": answer2},
            "annotations": annotations, "predictions": [], "meta": {}, "project": 3}


def test_label_studio_pairwise_tasks_import_the_side_the_annotators_selected(db, tmp_path):
    tasks = [
        label_studio_task(1, "怎样在 Python 里反转一个字符串？", BAD_PYTHON, GOOD_PYTHON, "right"),
        label_studio_task(2, "鸡兔同笼，共 35 个头、94 只脚，各有几只？", GOOD_MATH, BAD_MATH, "left", "left", "right",
                          cancelled=(2,)),
        label_studio_task(3, "用一句话介绍长城。", "长城是古代军事防御工程。", "长城在北京。", "left", "right"),
    ]
    report = run_import(write_json(tmp_path / "label-studio.json", tasks), dataset="ls")
    assert report["imported_pairs"] == 2
    pairs = pair_texts("ls")
    assert pairs["怎样在 Python 里反转一个字符串？"] == (GOOD_PYTHON, BAD_PYTHON)
    assert pairs["鸡兔同笼，共 35 个头、94 只脚，各有几只？"] == (GOOD_MATH, BAD_MATH)
    assert [(r["line"], r["reason"]) for r in report["rejected_rows"]] == [
        (3, "the annotations of this task disagree: 1 chose left, 1 right")]


# UltraFeedback ----------------------------------------------------------------------------------

def rated(instruction_following, honesty, truthfulness, helpfulness):
    return {
        "instruction_following": {"Rating": instruction_following, "Rationale": "是否遵循了指令。"},
        "honesty": {"Rating": honesty, "Rationale": "是否诚实表达了不确定性。"},
        "truthfulness": {"Type": ["0"], "Rationale": "有无事实错误。", "Rating": truthfulness,
                         "Rationale For Rating": "没有幻觉。"},
        "helpfulness": {"Type": ["1", "2"], "Rationale": "是否有帮助。", "Rating": helpfulness,
                        "Rationale For Rating": "信息全面。"},
    }


ULTRAFEEDBACK_RAW = {
    "source": "evol_instruct",
    "instruction": "请解释什么是光合作用，并写出总反应式。",
    "models": ["gpt-4", "llama-2-13b-chat", "alpaca-7b", "wizardlm-7b"],
    "correct_answers": ["None"], "incorrect_answers": ["None"],
    "completions": [
        {"model": "gpt-4", "principle": "helpfulness", "custom_system_prompt": "你是一个乐于助人的助手。",
         "response": "光合作用是绿色植物利用光能，把二氧化碳和水转化为有机物并释放氧气的过程：6CO₂ + 6H₂O → C₆H₁₂O₆ + 6O₂。",
         "annotations": rated("5", "5", "5", "5"), "critique": "准确完整。", "overall_score": 9.0,
         "fine-grained_score": 5.0},
        {"model": "llama-2-13b-chat", "principle": "helpfulness", "custom_system_prompt": "你是一个乐于助人的助手。",
         "response": "光合作用就是植物吃阳光。", "annotations": rated("2", "3", "2", "N/A"), "critique": "过于简略。",
         "overall_score": 4.0, "fine-grained_score": 2.33},
        {"model": "alpaca-7b", "principle": "truthfulness", "custom_system_prompt": "请如实回答。",
         "response": "   ", "annotations": rated("1", "1", "1", "1"), "critique": "空回答。", "overall_score": 1.0,
         "fine-grained_score": 1.0},
        {"model": "wizardlm-7b", "principle": "helpfulness", "custom_system_prompt": "你是一个乐于助人的助手。",
         "response": "光合作用在叶绿体中进行，分为光反应和暗反应两个阶段，最终生成葡萄糖。",
         "annotations": rated("4", "4", "4", "3"), "critique": "缺少反应式。", "overall_score": 7.0,
         "fine-grained_score": 3.75},
    ],
}


def test_raw_ultrafeedback_imports_responses_scored_by_its_judge_so_pairs_can_be_built(db, tmp_path):
    assert detect_format(ULTRAFEEDBACK_RAW) == "ultrafeedback"  # not alpaca, for its `instruction`
    path = write_jsonl(tmp_path / "ultrafeedback.jsonl", [ULTRAFEEDBACK_RAW])
    command = import_command.Command()
    report_path = tmp_path / "report.json"
    call_command(command, str(path), dataset="uf", report_json=str(report_path), no_progress=True,
                 no_near_duplicates=True)
    report = json.loads(report_path.read_text(encoding="utf-8"))
    # The empty completion is left out and listed; the three others are imported with their scores.
    assert command.exit_status == 2
    assert report["imported_responses"] == 3 and report["dropped_responses"] == 1
    assert report["rejected_rows"] == [{"line": 1, "reason": "field 'completions[2].response' is empty (this response "
                                        "was left out; the row's other responses were imported)"}]
    scores = dict(Judgement.objects.filter(judge__name="ultrafeedback").values_list("response__model", "score"))
    # The mean of the aspects' 1-5 ratings (N/A left out), times 2.
    assert scores == {"gpt-4": 10.0, "llama-2-13b-chat": pytest.approx(2 * 7 / 3), "wizardlm-7b": 7.5}
    assert report["by_domain"] == {"other": {"prompts": 1, "pairs": 0}}

    # Gaps: 10 - 4.67, 7.5 - 4.67 = 2.83 and 10 - 7.5 = 2.5; the higher score is chosen.
    call_command("build_pairs", dataset="uf", min_judges=1, threshold=2.6, no_progress=True)
    built = {(p.chosen.model, p.rejected.model) for p in Pair.objects.filter(dataset__name="uf")}
    assert built == {("gpt-4", "llama-2-13b-chat"), ("wizardlm-7b", "llama-2-13b-chat")}


def test_binarized_ultrafeedback_keeps_its_scores_as_the_judges(db, tmp_path):
    prompt = "请解释什么是光合作用。"
    chosen = "光合作用是植物利用光能合成有机物并释放氧气的过程。"
    rejected = "光合作用就是植物吃阳光。"
    record = {
        "prompt": prompt, "prompt_id": "9f2c41e0",
        "chosen": [{"role": "user", "content": prompt}, {"role": "assistant", "content": chosen}],
        "rejected": [{"role": "user", "content": prompt}, {"role": "assistant", "content": rejected}],
        "messages": [{"role": "user", "content": prompt}, {"role": "assistant", "content": chosen}],
        "score_chosen": 8.5, "score_rejected": 4.0,
    }
    report = run_import(write_jsonl(tmp_path / "binarized.jsonl", [record]), dataset="bin")
    assert report["imported_pairs"] == 1 and report["imported_judgements"] == 2
    assert pair_texts("bin") == {prompt: (chosen, rejected)}
    assert dict(Judgement.objects.values_list("response__text", "score")) == {chosen: 8.5, rejected: 4.0}
    with pytest.raises(RowError, match="field 'score_rejected' is 0, outside the 1-10 scale"):
        parse_record(dict(record, score_rejected=0), "trl")


# HH-RLHF and TRL's implicit prompt --------------------------------------------------------------

HH_CHOSEN = ("\n\nHuman: 我想学做红烧肉，需要哪些材料？"
             "\n\nAssistant: 五花肉、冰糖、生抽、老抽、料酒、葱姜和八角。"
             "\n\nHuman: 先放糖还是先放肉？"
             "\n\nAssistant: 先用小火把冰糖炒成焦糖色，再下焯过水的五花肉翻炒上色。")
HH_REJECTED = ("\n\nHuman: 我想学做红烧肉，需要哪些材料？"
               "\n\nAssistant: 五花肉、冰糖、生抽、老抽、料酒、葱姜和八角。"
               "\n\nHuman: 先放糖还是先放肉？"
               "\n\nAssistant: 随便。")


def test_hh_rlhf_transcripts_become_a_multi_turn_prompt_and_two_answers(db, tmp_path):
    record = {"chosen": HH_CHOSEN, "rejected": HH_REJECTED}
    assert detect_format(record) == "hh-rlhf"
    report = run_import(write_jsonl(tmp_path / "hh.jsonl", [record]), dataset="hh")
    assert report["imported_pairs"] == 1 and report["rejected_rows"] == []
    prompt = Prompt.objects.get(dataset__name="hh")
    assert prompt.messages == [
        {"role": "user", "content": "我想学做红烧肉，需要哪些材料？"},
        {"role": "assistant", "content": "五花肉、冰糖、生抽、老抽、料酒、葱姜和八角。"},
        {"role": "user", "content": "先放糖还是先放肉？"},
    ]
    assert pair_texts("hh") == {"先放糖还是先放肉？": ("先用小火把冰糖炒成焦糖色，再下焯过水的五花肉翻炒上色。", "随便。")}


def test_hh_rlhf_with_an_empty_last_answer_or_diverging_history_is_rejected_with_the_reason():
    with pytest.raises(RowError, match="the last 'Assistant:' turn of 'rejected' is empty"):
        parse_record({"chosen": HH_CHOSEN, "rejected": HH_REJECTED.replace("随便。", "")}, "hh-rlhf")
    other_question = HH_REJECTED.replace("先放糖还是先放肉？", "要炖多久？")
    with pytest.raises(RowError, match="differ at message 2, a user turn: they are not two answers to one prompt"):
        parse_record({"chosen": HH_CHOSEN, "rejected": other_question}, "hh-rlhf")


def test_trl_implicit_prompt_splits_at_the_common_prefix_even_mid_conversation(db, tmp_path):
    history = [
        {"role": "system", "content": "你是一名耐心的数学老师。"},
        {"role": "user", "content": "什么是质数？"},
        {"role": "assistant", "content": "只能被 1 和它本身整除的大于 1 的整数。"},
        {"role": "user", "content": "91 是质数吗？"},
    ]
    messages = {"chosen": history + [{"role": "assistant", "content": "不是，91 = 7 × 13。"}],
                "rejected": history + [{"role": "assistant", "content": "是的，91 是质数。"}]}
    texts = {"chosen": "问：天空是什么颜色？答：蓝色。", "rejected": "问：天空是什么颜色？答：绿色。"}
    report = run_import(write_jsonl(tmp_path / "implicit.jsonl", [messages, texts]), dataset="implicit")
    assert report["imported_pairs"] == 2 and report["rejected_rows"] == []
    assert Prompt.objects.get(query="91 是质数吗？").messages == history
    assert pair_texts("implicit") == {"91 是质数吗？": ("不是，91 = 7 × 13。", "是的，91 是质数。"),
                                      "问：天空是什么颜色？答：": ("蓝色。", "绿色。")}


def test_trl_implicit_prompts_that_are_not_one_answer_each_are_rejected_with_the_reason():
    with pytest.raises(RowError, match="share only '我', which ends inside a word"):
        parse_record({"chosen": "我认为答案是 42。", "rejected": "我不知道。"}, "trl")
    question = [{"role": "user", "content": "你好"}]
    with pytest.raises(RowError, match="'chosen' goes on for 2 more message"):
        parse_record({"chosen": question + [{"role": "assistant", "content": "你好！"},
                                            {"role": "user", "content": "再见"}, {"role": "assistant", "content": "再见！"}],
                      "rejected": question + [{"role": "assistant", "content": "嗯"}]}, "trl")


# Responses format, report and exit status -------------------------------------------------------

def test_a_responses_row_with_an_empty_generation_keeps_the_others_and_reports_it(db, tmp_path):
    rows = [
        {"prompt": "介绍一下长城。", "domain": "对话", "responses": [
            {"model": "qwen2-72b-instruct", "text": "长城是中国古代的军事防御工程。", "scores": {"gpt-4o": 8}},
            {"model": "glm-4", "text": " \n\t ", "scores": {"gpt-4o": 1}},
            {"model": "moonshot", "text": "长城很长。", "scores": {"gpt-4o": 4}},
        ]},
        {"prompt": "求 1+2+…+100。", "domain": "数学", "responses": [
            {"model": "deepseek-v2", "text": "用高斯求和：100×101÷2 = 5050。", "scores": {"gpt-4o": 9}}]},
    ]
    command = import_command.Command()
    report_path = tmp_path / "report.json"
    call_command(command, str(write_jsonl(tmp_path / "responses.jsonl", rows)), dataset="resp",
                 report_json=str(report_path), no_progress=True, no_near_duplicates=True)
    report = json.loads(report_path.read_text(encoding="utf-8"))
    assert command.exit_status == 2
    assert report["imported_responses"] == 3 and report["rows_read"] == 2 and report["dropped_responses"] == 1
    assert report["rejected_rows"] == [{"line": 1, "reason": "field 'responses[1].text' is empty (this response was "
                                        "left out; the row's other responses were imported)"}]
    assert set(Response.objects.values_list("model", flat=True)) == {"qwen2-72b-instruct", "moonshot", "deepseek-v2"}
    # A responses import creates prompts, not pairs: the domain table counts them.
    assert report["by_domain"] == {"chat": {"prompts": 1, "pairs": 0}, "math": {"prompts": 1, "pairs": 0}}
    job = Job.objects.get(kind="import")
    assert job.status == Job.Status.PROBLEMS and "1 response(s) were left out" in job.error


def test_the_job_page_shows_prompts_by_domain_for_a_responses_import(client, team, tmp_path):
    rows = [{"prompt": "介绍一下长城。", "domain": "对话", "responses": [{"model": "glm-4", "text": "长城是古代防御工程。"}]}]
    call_command("import_pairs", str(write_jsonl(tmp_path / "r.jsonl", rows)), dataset=team.dataset.name,
                 no_progress=True, no_near_duplicates=True)
    job = Job.objects.get(kind="import")
    client.force_login(team.viewer)
    html = client.get(f"/jobs/{job.pk}/").content.decode()
    assert 'id="import-by-domain"' in html
    assert '<tr><td>Chat</td><td class="num">1</td><td class="num">0</td></tr>' in html


def test_a_file_from_which_no_row_could_be_imported_exits_non_zero_and_says_so(db, tmp_path, capsys):
    pending = [argilla_record("今天天气怎么样？", "请查看天气预报。", "晴天。")]
    with pytest.raises(CommandError, match=r"^import failed: 1 of 1 row rejected") as failed:
        call_command("import_pairs", str(write_json(tmp_path / "pending.json", pending)), dataset="空", no_progress=True)
    assert failed.value.returncode == 1
    assert "nothing was imported into dataset '空': no row of pending.json could be imported" in capsys.readouterr().err
    assert not Prompt.objects.filter(dataset__name="空").exists()


def test_each_foreign_format_is_detected_where_it_used_to_pass_for_another_or_be_refused():
    nested = argilla_record("问题", "回答一", "回答二", responses=[{"value": ["response-1", "response-2"],
                                                                  "user_id": ANNOTATOR_1}])
    assert detect_format(nested) == "argilla"  # not our `responses` format, for its `responses` key
    assert detect_format(ULTRAFEEDBACK_RAW) == "ultrafeedback"  # not alpaca, for its `instruction`
    assert detect_format(label_studio_task(1, "问题", "回答一", "回答二", "left")) == "labelstudio"
    assert detect_format({"chosen": HH_CHOSEN, "rejected": HH_REJECTED}) == "hh-rlhf"
    # TRL's implicit prompt is trl, and no longer refused for a missing 'prompt'.
    pair = parse_record({"chosen": "天空是什么颜色？ 蓝色。", "rejected": "天空是什么颜色？ 绿色。"}, "trl")
    assert (pair.messages, pair.chosen, pair.rejected) == (
        [{"role": "user", "content": "天空是什么颜色？"}], " 蓝色。", " 绿色。")


@pytest.mark.parametrize("record,reason", [
    ({"fields": {"prompt": "问", "a": "甲", "b": "乙"}, "responses": [1, 2], "suggestions": {}},
     "no submitted response and no suggestion"),
    ({"fields": {"prompt": "问", "a": "甲", "b": "乙"},
      "responses": {"rank": [{"value": [{"value": "a", "rank": "一"}, {"value": "b", "rank": 2}]}]}},
     "gives 'a' the rank '一', not a number"),
    ({"prompt": "问", "a": "甲", "b": "乙", "rank.responses": [["a", "b"]], "rank.responses.status": 3},
     "field 'rank.responses.status' must be a list, got int"),
    ({"fields": {"prompt": "问", "a": "甲", "b": "乙"}, "responses": {"rank": [{"value": ["a", "c"]}]}},
     "the ranking 'rank' names 'c', which is no field of the record"),
    ({"fields": {"x": "问", "y": "又问", "a": "甲", "b": "乙"}, "responses": {"rank": [{"value": ["a", "b"]}]}},
     "cannot tell which field holds the prompt among x, y; name it with --columns prompt=FIELD"),
    ({"data": {"prompt": "问", "good": "甲", "bad": "乙"},
      "annotations": [{"result": [{"value": {"selected": "left"}}]}]},
     "cannot tell which of the task's fields"),
    ({"data": {"prompt": "问", "answer1": "甲", "answer2": "乙"}, "annotations": [{"result": "left"}]},
     "Label Studio task without a pairwise choice (selected: left/right)"),
    ({"instruction": "问", "completions": "四个回答"}, "field 'completions' must be a non-empty list"),
    ({"instruction": "问", "completions": [{"response": "甲", "annotations": {"honesty": {"Rating": "7"}}}]},
     "completions[0].annotations.honesty.Rating is 7, outside UltraFeedback's 1-5 scale"),
])
def test_malformed_foreign_records_are_rejected_with_a_reason_not_a_crash(record, reason):
    with pytest.raises(RowError, match=re.escape(reason)):
        parse_record(record, detect_format(record))
