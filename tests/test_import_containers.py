"""JSON array, CSV and Parquet files: streamed, column-mapped, row-numbered, resumable."""

import csv
import gzip
import json
from datetime import timedelta

import pyarrow as pa
import pyarrow.parquet as pq
import pytest
import zstandard
from django.core.management import CommandError, call_command
from django.utils import timezone

from annotation import jobs
from annotation.ingest.importer import import_params
from annotation.models import Dataset, Job, Pair, Prompt, Response

from .conftest import ALIGNBENCH_QUESTIONS, DPO_SAMPLE, shared_data
from .helpers import generated_pairs, sharegpt_line, write_jsonl
from .test_import import run_import



def read_jsonl(path):
    return [json.loads(line) for line in path.read_text(encoding="utf-8").splitlines() if line.strip()]


def pair_keys(dataset):
    return set(Pair.objects.filter(dataset__name=dataset).values_list(
        "prompt__content_hash", "chosen__content_hash", "rejected__content_hash"))


def write_csv(path, header, rows, encoding="utf-8"):
    with open(path, "w", encoding=encoding, newline="") as f:
        writer = csv.writer(f)
        writer.writerow(header)
        writer.writerows(rows)
    return path


def sharegpt_as_columns(record):
    """(system, history messages, query, chosen, rejected) of a sharegpt ranking record."""
    roles = {"system": "system", "human": "user", "gpt": "assistant"}
    turns = [{"role": roles[t["from"]], "content": t["value"]} for t in record["conversations"]]
    system = turns.pop(0)["content"] if turns[0]["role"] == "system" else ""
    return system, turns[:-1], turns[-1]["content"], record["chosen"]["value"], record["rejected"]["value"]


# The real sample in every container: the same pairs as the JSONL import.

@pytest.fixture
def dpo_jsonl_import(db, tmp_path):
    path = tmp_path / "dpo.jsonl"
    path.write_bytes(shared_data(DPO_SAMPLE).read_bytes())
    report = run_import(path, dataset="jsonl")
    assert report["imported_pairs"] > 150 and report["rejected_rows"] == []
    return report


@pytest.mark.parametrize("compression", ["", ".gz", ".zst"])
def test_the_real_sample_as_a_json_array_imports_the_same_pairs_as_jsonl(dpo_jsonl_import, tmp_path, compression):
    raw = json.dumps(read_jsonl(shared_data(DPO_SAMPLE)), ensure_ascii=False, indent=2).encode("utf-8")
    raw = {"": raw, ".gz": gzip.compress(raw) if compression == ".gz" else b"",
           ".zst": zstandard.ZstdCompressor().compress(raw) if compression == ".zst" else b""}[compression]
    path = tmp_path / f"dpo.json{compression}"
    path.write_bytes(raw)
    report = run_import(path, dataset="array")
    assert report["imported_pairs"] == dpo_jsonl_import["imported_pairs"]
    assert report["duplicates"] == dpo_jsonl_import["duplicates"]
    assert report["rejected_rows"] == []
    assert pair_keys("array") == pair_keys("jsonl")


def test_the_real_sample_as_a_mapped_csv_imports_the_same_pairs_as_jsonl(dpo_jsonl_import, tmp_path):
    rows = []
    for record in read_jsonl(shared_data(DPO_SAMPLE)):
        system, history, query, chosen, rejected = sharegpt_as_columns(record)
        rows.append([query, system, json.dumps(history, ensure_ascii=False) if history else "", chosen, rejected])
    path = write_csv(tmp_path / "dpo.csv", ["问题", "系统提示", "历史", "好", "差"], rows)
    report = run_import(path, dataset="csv", columns="prompt=问题,system=系统提示,history=历史,chosen=好,rejected=差")
    assert report["rejected_rows"] == []
    assert report["imported_pairs"] == dpo_jsonl_import["imported_pairs"]
    assert pair_keys("csv") == pair_keys("jsonl")


def test_the_real_sample_as_parquet_with_nested_columns_imports_the_same_pairs_as_jsonl(dpo_jsonl_import, tmp_path):
    path = tmp_path / "dpo.parquet"
    pq.write_table(pa.Table.from_pylist(read_jsonl(shared_data(DPO_SAMPLE))), path, row_group_size=64)
    report = run_import(path, dataset="parquet")
    assert report["rejected_rows"] == []
    assert report["imported_pairs"] == dpo_jsonl_import["imported_pairs"]
    assert pair_keys("parquet") == pair_keys("jsonl")


def test_real_questions_with_reference_answers_import_as_responses_from_csv_like_jsonl(db, tmp_path):
    questions = read_jsonl(shared_data(ALIGNBENCH_QUESTIONS))
    as_jsonl = [{"prompt": q["question"], "domain": q["category"],
                 "responses": [{"model": "reference", "text": q["reference"]}]} for q in questions]
    jsonl = run_import(write_jsonl(tmp_path / "ab.jsonl", as_jsonl), dataset="ab-jsonl")
    path = write_csv(tmp_path / "ab.csv", ["question", "category", "answer", "source"],
                     [[q["question"], q["category"], q["reference"], "reference"] for q in questions])
    report = run_import(path, dataset="ab-csv", columns="prompt=question,domain=category,text=answer,model=source")
    assert report["rejected_rows"] == jsonl["rejected_rows"]
    assert report["imported_responses"] == jsonl["imported_responses"] > 600
    assert report["imported_prompts"] == jsonl["imported_prompts"]
    assert set(Response.objects.filter(prompt__dataset__name="ab-csv").values_list("model", flat=True)) == {"reference"}


# JSON arrays

def test_a_json_array_reports_a_malformed_element_by_row_and_keeps_the_others(db, tmp_path):
    good = [json.dumps(sharegpt_line(i), ensure_ascii=False) for i in range(1, 5)]
    text = "[\n" + ",\n".join([good[0], '{"conversations": [{"from": "human", "value": "x"}}', good[1],
                                '{"chosen": "a" "rejected": "b"}', good[2], "42", good[3]]) + "\n]\n"
    path = tmp_path / "array.json"
    path.write_text(text, encoding="utf-8")
    report = run_import(path)
    assert report["imported_pairs"] == 4
    reasons = {row["line"]: row["reason"] for row in report["rejected_rows"]}
    assert sorted(reasons) == [2, 4, 6]
    assert reasons[2].startswith("malformed JSON") and reasons[4].startswith("malformed JSON")
    assert reasons[6] == "expected a JSON object, got int"


def test_a_truncated_json_array_reports_the_cut_row_and_keeps_the_rows_before_it(db, tmp_path):
    text = json.dumps([sharegpt_line(i) for i in range(10)], ensure_ascii=False)
    path = tmp_path / "cut.json.gz"
    path.write_bytes(gzip.compress(text[: len(text) - 40].encode("utf-8")))
    report = run_import(path)
    assert report["imported_pairs"] == 9
    assert report["rejected_rows"] == [
        {"line": 10, "reason": "the file ends inside this element: the JSON array is truncated"}]


def test_a_json_array_element_with_bytes_outside_utf8_is_rejected_alone(db, tmp_path):
    first = json.dumps(sharegpt_line(1), ensure_ascii=False).encode()
    bad = b'{"conversations": [{"from": "human", "value": "\xff"}], "chosen": "a", "rejected": "b"}'
    path = tmp_path / "bytes.json"
    path.write_bytes(b"[" + first + b",\n" + bad + b"]")
    report = run_import(path)
    assert report["imported_pairs"] == 1
    assert report["rejected_rows"][0]["line"] == 2
    assert report["rejected_rows"][0]["reason"].startswith("not valid UTF-8 (byte 0xff")


# CSV

def test_csv_rows_are_numbered_by_the_line_they_start_on_and_json_cells_are_decoded(db, tmp_path):
    messages = json.dumps([{"role": "system", "content": "你是数学老师"}, {"role": "user", "content": "1+1=?"}],
                          ensure_ascii=False)
    rows = [
        ["第一行\n跨两行的问题", "好的回答", "差的回答", "数学"],        # lines 2-3
        ["", "好", "差", "数学"],                                         # line 4: empty prompt
        [messages, "等于2", "等于3", "math"],                              # line 5: messages cell
        ["问题", "same", "same", "代码"],                                  # line 6: identical
    ]
    path = write_csv(tmp_path / "q.csv", ["question", "good", "bad", "category"], rows)
    report = run_import(path, columns="prompt=question, chosen=good, rejected=bad, domain=category")
    assert report["imported_pairs"] == 2
    assert report["rejected_rows"] == [
        {"line": 4, "reason": "field 'prompt' is empty (column 'question')"},
        {"line": 6, "reason": "chosen and rejected are identical"},
    ]
    prompt = Prompt.objects.get(messages__1__content="1+1=?")
    assert prompt.system_prompt() == "你是数学老师" and prompt.domain == "math"
    assert Prompt.objects.filter(query="第一行\n跨两行的问题").exists()


def test_a_csv_whose_header_uses_our_names_needs_no_mapping_and_may_be_gb18030_with_any_row_format(db, tmp_path):
    rows = [[f"第{i}个问题", f"第{i}个好回答", f"第{i}个差回答"] for i in range(3)]
    path = write_csv(tmp_path / "plain.csv", ["prompt", "chosen", "rejected"], rows, encoding="gb18030")
    assert run_import(path, dataset="gbk")["imported_pairs"] == 3
    bom = write_csv(tmp_path / "bom.txt", ["instruction", "input", "chosen", "rejected"],
                    [["翻译", "hello", "你好", "再见"]], encoding="utf-8-sig")
    assert run_import(bom, dataset="bom", format="csv")["imported_pairs"] == 1
    assert Prompt.objects.filter(dataset__name="bom", query="翻译\nhello").exists()


def test_a_csv_record_with_the_wrong_number_of_cells_or_a_bad_json_cell_is_rejected_with_its_line(db, tmp_path):
    path = tmp_path / "bad.csv"
    path.write_text("prompt,chosen,rejected,history\n"
                    "q1,a,b,\n"
                    "q2,a\n"
                    'q3,a,b,"[[""hi"", ""hello""]"\n'
                    "q4,a,b,not json\n", encoding="utf-8")
    report = run_import(path)
    assert report["imported_pairs"] == 1
    reasons = {row["line"]: row["reason"] for row in report["rejected_rows"]}
    assert reasons[3] == "the record has 2 cells; the header has 4 columns"
    assert reasons[4].startswith("field 'history' must hold a JSON list")
    assert reasons[5].startswith("field 'history' must hold a JSON list")


def test_a_column_mapping_naming_a_missing_column_fails_with_the_column_name(db, tmp_path):
    path = write_csv(tmp_path / "a.csv", ["question", "good", "bad"], [["q", "a", "b"]])
    with pytest.raises(CommandError, match=r"no column 'answer' \(for rejected\); its columns are 'question'"):
        call_command("import_pairs", str(path), dataset="d", columns="prompt=question,chosen=good,rejected=answer",
                     no_progress=True)
    with pytest.raises(CommandError, match="unknown field 'promt' in the column mapping"):
        call_command("import_pairs", str(path), dataset="d", columns="promt=question", no_progress=True)


# Parquet

def test_parquet_columns_are_mapped_and_an_explicit_row_format_works_on_a_sniffed_parquet_file(db, tmp_path):
    table = pa.table({
        "q": ["第一个问题", "第二个问题", None],
        "good": [[{"role": "assistant", "content": "好"}], [{"role": "assistant", "content": "好2"}], None],
        "bad": [[{"role": "assistant", "content": "差"}], [{"role": "assistant", "content": "差2"}], None],
        "tag": ["代码", "数学", "数学"],
    })
    path = tmp_path / "data.bin"
    pq.write_table(table, path)
    report = run_import(path, format="trl", columns="prompt=q,chosen=good,rejected=bad,domain=tag")
    assert report["imported_pairs"] == 2
    assert report["rejected_rows"] == [{"line": 3, "reason": "field 'prompt' must be a string or a non-empty list "
                                                           "of {role, content} messages (column 'q')"}]
    assert sorted(Pair.objects.values_list("domain", flat=True)) == ["code", "math"]


def test_a_damaged_parquet_file_fails_with_a_reason(db, tmp_path):
    path = tmp_path / "broken.parquet"
    path.write_bytes(b"PAR1" + b"\x00" * 100)
    with pytest.raises(CommandError, match="broken.parquet: broken.parquet is not a readable Parquet file"):
        call_command("import_pairs", str(path), dataset="d", no_progress=True)


def test_an_unknown_format_is_a_one_line_error(db, tmp_path):
    path = write_jsonl(tmp_path / "a.jsonl", [sharegpt_line(1)])
    with pytest.raises(CommandError) as error:
        call_command("import_pairs", str(path), dataset="d", format="xlsx", no_progress=True)
    assert str(error.value) == ("unknown format 'xlsx'; expected one of auto, sharegpt, trl, alpaca, crbench, "
                                "responses, prompts, argilla, labelstudio, ultrafeedback, hh-rlhf, jsonl, json, "
                                "csv, parquet")
    assert not Dataset.objects.filter(name="d").exists()


# Resuming after a crash

class Crash(BaseException):
    """Stands in for a killed process: nothing in the job framework catches it."""


def import_interrupted_then_resumed(path, dataset, batch_size, **options):
    params = import_params(path, batch_size=batch_size, **options)
    job = Job.objects.create(kind="import", dataset=Dataset.objects.create(name=dataset), params=params, unit="bytes")
    commits = []

    def crash_on_second_batch(job_state, counts):
        commits.append(counts["rows_read"])
        if len(commits) == 2:
            raise Crash()  # inside the second batch's transaction: only the first one stays

    with pytest.raises(Crash):
        jobs.execute(job.pk, on_progress=crash_on_second_batch)
    job.refresh_from_db()
    assert job.status == Job.Status.RUNNING and job.counts["rows_read"] == batch_size, "stopped after one batch"
    Job.objects.filter(pk=job.pk).update(heartbeat_at=timezone.now() - timedelta(days=1))
    assert jobs.execute(job.pk) in Job.COMPLETED  # with problems where the file has bad rows
    job.refresh_from_db()
    return job


def write_container(kind, tmp_path, records):
    if kind == "json":
        path = tmp_path / "pairs.json.zst"
        path.write_bytes(zstandard.ZstdCompressor().compress(json.dumps(records, ensure_ascii=False).encode()))
    elif kind == "csv":
        path = write_csv(tmp_path / "pairs.csv", ["query", "chosen", "rejected", "domain"], [
            [r["conversations"][0]["value"], r["chosen"]["value"], r["rejected"]["value"], r["domain"]]
            for r in records])
    else:
        path = tmp_path / "pairs.parquet"
        pq.write_table(pa.Table.from_pylist(records), path, row_group_size=70)
    return path


@pytest.mark.parametrize("kind", ["json", "csv", "parquet"])
def test_an_import_interrupted_after_one_batch_and_resumed_has_the_same_rows_as_an_uninterrupted_one(
    db, tmp_path, kind
):
    records = generated_pairs(400, seed=3)
    path = write_container(kind, tmp_path, records)
    columns = "prompt=query" if kind == "csv" else ""
    job = import_interrupted_then_resumed(path, "resumed", batch_size=90, columns=columns)
    assert job.attempts == 2
    assert job.counts["rows_read"] == 400 == job.counts["imported_pairs"]
    assert job.counts["duplicates"] == 0 and not job.errors.exists()
    run_import(path, dataset="straight", columns=columns)
    assert pair_keys("resumed") == pair_keys("straight")
    assert len(pair_keys("resumed")) == 400


# Streaming: the first record comes out long before the file has been read.

@pytest.mark.parametrize("kind", ["json", "csv"])
def test_json_arrays_and_csv_files_are_read_as_a_stream_not_whole(tmp_path, kind):
    from annotation.ingest.readers import JsonArrayReader
    from annotation.ingest.tabular import CsvReader

    records = generated_pairs(60_000, seed=1)
    if kind == "json":
        path = tmp_path / "big.json"
        path.write_text(json.dumps(records, ensure_ascii=False), encoding="utf-8")
        reader = JsonArrayReader(path)
    else:
        path = write_csv(tmp_path / "big.csv", ["prompt", "chosen", "rejected"], [
            [r["conversations"][0]["value"], r["chosen"]["value"], r["rejected"]["value"]] for r in records])
        reader = CsvReader(path)
    size = path.stat().st_size
    assert size > 4 * 1024 * 1024
    items = iter(reader)
    first = next(items)
    assert first.line == (1 if kind == "json" else 2) and not first.error
    assert reader.raw_bytes_read() < 3 * 1024 * 1024, "only the first chunks were read"
    assert sum(1 for _ in items) == len(records) - 1
    assert reader.raw_bytes_read() == size
    reader.close()


def test_a_column_mapping_also_renames_the_keys_of_json_records(db, tmp_path):
    path = write_jsonl(tmp_path / "own.jsonl", [{"q": "什么是DPO？", "good": "直接偏好优化", "bad": "不知道", "cat": "对话"}])
    report = run_import(path, columns="prompt=q,chosen=good,rejected=bad,domain=cat")
    assert report["imported_pairs"] == 1 and report["by_domain"] == {"chat": {"prompts": 1, "pairs": 1}}


def test_a_batch_ends_once_its_rows_hold_batch_chars_of_text_and_every_row_still_lands(db, tmp_path, monkeypatch):
    from annotation.ingest import importer

    lines = [sharegpt_line(i) for i in range(12)]
    for line in lines[4:8]:  # four huge rows in the middle: each holds ~3,000 characters
        line["chosen"]["value"] += "长" * 3000
    path = write_jsonl(tmp_path / "pairs.jsonl", lines)
    monkeypatch.setattr(importer, "BATCH_CHARS", 5000)
    job = Job.objects.create(kind="import", dataset=Dataset.objects.create(name="big rows"),
                             params=import_params(path, batch_size=100), unit="bytes")
    rows_read = []
    assert jobs.execute(job.pk, on_progress=lambda _state, counts: rows_read.append(counts["rows_read"])) \
        == Job.Status.SUCCEEDED
    batches = [later - earlier for earlier, later in zip([0, *rows_read], rows_read) if later > earlier]
    # The short rows share a batch; the huge ones close a batch every second row; nothing is lost.
    assert batches[0] >= 5 and 2 in batches and sum(batches) == 12, batches
    assert Pair.objects.filter(dataset__name="big rows").count() == 12
