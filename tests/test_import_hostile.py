"""Hostile files: over-long lines, decompression bombs, cut-off or damaged .gz/.zst files, and
millions of bad rows. Each is stopped with a reason, and nothing readable before it is lost."""

import csv
import gzip
import io
import json
import re
import tracemalloc
import zlib

import pytest
import zstandard
from django.core.management import CommandError, call_command

from annotation.ingest.readers import JsonArrayReader, JsonlReader
from annotation.ingest.tabular import CsvReader
from annotation.models import Job, JobError, Pair, Prompt

from .helpers import generated_pairs, sharegpt_line
from .test_import import run_import
from .test_import_containers import import_interrupted_then_resumed


def jsonl_bytes(records):
    return b"".join((r if isinstance(r, bytes) else json.dumps(r, ensure_ascii=False).encode()) + b"\n"
                    for r in records)


def compress(data, suffix, checksum=False):
    if suffix == ".gz":
        return gzip.compress(data, mtime=0)
    if suffix == ".zst":
        return zstandard.ZstdCompressor(write_checksum=checksum).compress(data)
    return data


def write(path, data):
    path.write_bytes(compress(data, path.suffix))
    return path


def damaged_import(path, dataset="hostile", match=None):
    """Import a file that stops early (a bomb, a cut or a damaged file) after complete rows: the rows
    before the problem are kept, and the job finishes with problems and says what is wrong with the file."""
    call_command("import_pairs", str(path), dataset=dataset, no_progress=True, no_near_duplicates=True)
    job = Job.objects.get(kind="import", dataset__name=dataset)
    assert job.status == Job.Status.PROBLEMS
    if match:
        assert re.search(match, job.error), job.error
    return job


# Over-long lines, records and elements

@pytest.mark.parametrize("suffix", ["", ".gz", ".zst"])
def test_an_over_long_jsonl_line_is_one_rejected_row_and_the_lines_after_it_are_read(db, tmp_path, settings, suffix):
    settings.IMPORT_MAX_LINE_BYTES = 10_000
    long_line = dict(sharegpt_line(2), chosen={"from": "gpt", "value": "长" * 5_000})  # 15 KB, under the field limit
    path = write(tmp_path / f"long.jsonl{suffix}", jsonl_bytes([sharegpt_line(1), long_line, sharegpt_line(3), "{bad"]))
    report = run_import(path)
    assert report["imported_pairs"] == 2
    assert report["rejected_rows"][0] == {"line": 2, "reason": "line longer than 10,000 bytes (IMPORT_MAX_LINE_BYTES)"}
    assert report["rejected_rows"][1]["line"] == 4, "the lines after the long one keep their numbers"
    assert not Prompt.objects.filter(query=long_line["conversations"][0]["value"]).exists()


def test_an_over_long_csv_record_is_one_rejected_row_whether_on_one_line_or_many(db, tmp_path, settings):
    settings.IMPORT_MAX_LINE_BYTES = 10_000
    path = tmp_path / "long.csv.gz"
    text = io.StringIO(newline="")
    writer = csv.writer(text)
    writer.writerows([
        ["prompt", "chosen", "rejected"],
        ["问题一", "好的回答一", "差一"],                             # line 2
        ["问题二", "\n".join(["很长的回答" * 200] * 20), "差二"],     # lines 3-22: a quoted cell over many lines
        ["问题三", "好的回答三", "差三"],                             # line 23
        ["问题四", "长" * 20_000, "差四"],                            # line 24: one long line
        ["问题五", "好的回答五", "差五"],                             # line 25
        ["only two", "cells"],                                        # line 26
    ])
    path.write_bytes(gzip.compress(text.getvalue().encode()))
    report = run_import(path)
    assert report["imported_pairs"] == 3
    assert report["rejected_rows"] == [
        {"line": 3, "reason": "record longer than 10,000 characters (IMPORT_MAX_LINE_BYTES)"},
        {"line": 24, "reason": "record longer than 10,000 characters (IMPORT_MAX_LINE_BYTES)"},
        {"line": 26, "reason": "the record has 2 cells; the header has 3 columns"},
    ]
    assert set(Prompt.objects.values_list("query", flat=True)) == {"问题一", "问题三", "问题五"}


def test_an_over_long_json_array_element_is_one_rejected_row_and_the_elements_after_it_are_read(
    db, tmp_path, settings
):
    settings.IMPORT_MAX_LINE_BYTES = 10_000
    records = [sharegpt_line(1), dict(sharegpt_line(2), chosen={"from": "gpt", "value": "长\\\"" * 20_000}),
               sharegpt_line(3)]
    path = write(tmp_path / "long.json.zst", json.dumps(records, ensure_ascii=False).encode())
    report = run_import(path)
    assert report["imported_pairs"] == 2
    assert report["rejected_rows"] == [
        {"line": 2, "reason": "element longer than 10,000 characters (IMPORT_MAX_LINE_BYTES)"}]


@pytest.mark.parametrize("kind", ["jsonl", "csv", "json"])
def test_a_100_mb_line_is_skipped_without_being_held_in_memory(tmp_path, settings, kind):
    settings.IMPORT_MAX_LINE_BYTES = 1 << 20
    settings.IMPORT_MAX_DECOMPRESSION_RATIO = 100_000  # 100 MB of one letter is a bomb by the default ratio
    good = sharegpt_line(1)
    cells = [good["conversations"][0]["value"], good["chosen"]["value"], good["rejected"]["value"]]
    head, tail = {
        "jsonl": (jsonl_bytes([good]) + b'{"chosen": "', b'"}\n' + jsonl_bytes([good])),
        "csv": (f"prompt,chosen,rejected\n{','.join(cells)}\n".encode() + b'x,"', f'",y\n{",".join(cells)}\n'.encode()),
        "json": (b"[" + jsonl_bytes([good]) + b', {"chosen": "', b'"}, ' + jsonl_bytes([good]) + b"]"),
    }[kind]
    path = tmp_path / f"one-long-line.{kind}.zst"
    with open(path, "wb") as f, zstandard.ZstdCompressor().stream_writer(f) as out:
        out.write(head)
        for _ in range(100):
            out.write(b"a" * (1 << 20) + (b"\n" if kind == "csv" else b""))  # CSV: one quoted cell over 100 lines
        out.write(tail)
    reader_class = {"jsonl": JsonlReader, "csv": CsvReader, "json": JsonArrayReader}[kind]
    tracemalloc.start()
    try:
        reader = reader_class(path)
        items = list(reader)
        peak = tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()
    reader.close()
    assert [bool(item.error) for item in items] == [False, True, False]
    assert "longer than 1,048,576" in items[1].error
    assert peak < 24 << 20, f"the reader held {peak / 2**20:.0f} MiB"


def test_100_mb_of_spaces_between_json_array_elements_are_not_held_in_memory(tmp_path, settings):
    settings.IMPORT_MAX_DECOMPRESSION_RATIO = 100_000
    path = tmp_path / "spaces.json.zst"
    with open(path, "wb") as f, zstandard.ZstdCompressor().stream_writer(f) as out:
        out.write(b"[" + jsonl_bytes([sharegpt_line(1)]) + b",")
        for _ in range(100):
            out.write(b" " * (1 << 20))
        out.write(jsonl_bytes([sharegpt_line(2)]) + b"]")
    tracemalloc.start()
    try:
        reader = JsonArrayReader(path)
        items = list(reader)
        peak = tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()
    reader.close()
    assert [(item.line, item.error) for item in items] == [(1, ""), (2, "")]
    assert peak < 24 << 20, f"the reader held {peak / 2**20:.0f} MiB"


# Decompression bombs

def bomb(good_lines):
    """Good lines, then one 20 MB line of zeros: it compresses to some 20 KB."""
    return jsonl_bytes(generated_pairs(good_lines)) + b"0" * 20_000_000 + b"\n" + jsonl_bytes([sharegpt_line(1)])


@pytest.mark.parametrize("suffix", [".gz", ".zst"])
@pytest.mark.parametrize("setting,value,reason", [
    ("IMPORT_MAX_DECOMPRESSED_BYTES", 1 << 20,
     "its content is larger than 1,048,576 bytes, the limit for a decompressed file (IMPORT_MAX_DECOMPRESSED_BYTES)"),
    ("IMPORT_MAX_DECOMPRESSION_RATIO", 3,
     "its content is more than 3 times the file's size (3,145,728 bytes; IMPORT_MAX_DECOMPRESSION_RATIO), as in a "
     "decompression bomb"),
])
def test_a_decompression_bomb_stops_the_import_with_the_limit_and_keeps_the_rows_before_it(
    db, tmp_path, settings, suffix, setting, value, reason
):
    setattr(settings, setting, value)
    path = write(tmp_path / f"bomb.jsonl{suffix}", bomb(500))
    assert path.stat().st_size < 100_000
    job = damaged_import(path)
    assert job.error == (f"bomb.jsonl{suffix}: {reason}; reading stopped there; every complete row before that "
                         "point was imported")
    assert Pair.objects.count() == 500 == job.counts["imported_pairs"]
    assert list(job.errors.values_list("line", "reason")) == [
        (501, f"the line is cut off: {reason}; reading stopped there")]


def test_a_file_exactly_at_the_decompression_limit_is_read_whole(db, tmp_path, settings):
    data = jsonl_bytes(generated_pairs(20))
    settings.IMPORT_MAX_DECOMPRESSED_BYTES = len(data)
    assert run_import(write(tmp_path / "exact.jsonl.zst", data))["imported_pairs"] == 20


# Truncated and damaged compressed files

def available_prefix(data, suffix):
    """What an independent decompressor gets out of a cut-off file."""
    if suffix == ".gz":
        return zlib.decompressobj(wbits=31).decompress(data)
    return zstandard.ZstdDecompressor().decompressobj().decompress(data)


def truncated_file(tmp_path, name, content):
    suffix = "." + name.rsplit(".", 1)[1]
    whole = compress(content, suffix)
    path = tmp_path / name
    path.write_bytes(whole[:len(whole) // 2])
    return path, available_prefix(path.read_bytes(), suffix), path.stat().st_size


@pytest.mark.parametrize("name", ["cut.jsonl.gz", "cut.jsonl.zst"])
def test_a_truncated_jsonl_file_says_so_and_keeps_every_complete_line_before_the_cut(db, tmp_path, name):
    path, prefix, size = truncated_file(tmp_path, name, jsonl_bytes(generated_pairs(6_000)))
    complete = prefix.count(b"\n")
    assert 1_000 < complete < 6_000
    kind = "gzip" if name.endswith(".gz") else "zstd"
    problem = (f"the file is truncated: its {kind} data stops at byte {size:,}, "
               + ("before the end of the stream" if kind == "gzip" else "inside a frame"))
    job = damaged_import(path, match="truncated")
    assert job.error == f"{name}: {problem}; every complete row before that point was imported"
    assert Pair.objects.count() == complete == job.counts["imported_pairs"]
    assert list(job.errors.values_list("line", "reason")) == [(complete + 1, f"the line is cut off: {problem}")]


def test_a_truncated_csv_file_keeps_every_complete_record_and_never_a_partial_one(db, tmp_path):
    records = generated_pairs(6_000)
    rows = [[r["conversations"][0]["value"], r["chosen"]["value"], r["rejected"]["value"]] for r in records]
    text = io.StringIO(newline="")
    csv.writer(text).writerows([["prompt", "chosen", "rejected"], *rows])
    path, prefix, size = truncated_file(tmp_path, "cut.csv.gz", text.getvalue().encode())
    complete = prefix.count(b"\n") - 1
    job = damaged_import(path, match="truncated")
    assert Pair.objects.count() == complete == job.counts["imported_pairs"]
    assert set(Prompt.objects.values_list("query", flat=True)) == {row[0] for row in rows[:complete]}
    assert job.errors.get().line == complete + 2
    assert job.errors.get().reason.startswith("the record is cut off: the file is truncated")


def test_a_truncated_json_array_file_keeps_every_complete_element(db, tmp_path):
    records = generated_pairs(6_000)
    content = ("[\n" + ",\n".join(json.dumps(r, ensure_ascii=False) for r in records) + "\n]").encode()
    path, prefix, size = truncated_file(tmp_path, "cut.json.zst", content)
    complete = prefix.count(b",\n")
    job = damaged_import(path, match="truncated")
    assert job.error.startswith("cut.json.zst: the file is truncated: its zstd data stops at byte")
    assert Pair.objects.count() == complete == job.counts["imported_pairs"]
    assert job.errors.get().line == complete + 1


@pytest.mark.parametrize("suffix", [".gz", ".zst"])
def test_a_corrupt_compressed_file_says_where_and_keeps_the_good_rows_before_it(db, tmp_path, suffix):
    records = generated_pairs(6_000)
    data = bytearray(compress(jsonl_bytes(records), suffix, checksum=True))
    data[len(data) // 2] ^= 0xFF
    path = tmp_path / f"corrupt.jsonl{suffix}"
    path.write_bytes(data)
    kind = "gzip" if suffix == ".gz" else "zstd"
    job = damaged_import(path, match=f"corrupt.jsonl{suffix}: the file is corrupt: its {kind} data cannot be "
                                     "decompressed past byte")
    imported = set(Prompt.objects.values_list("query", flat=True))
    assert {r["conversations"][0]["value"] for r in records[:1_000]} <= imported, "the rows before the damage"
    if suffix == ".gz":  # zlib finds this damage at once; zstd only at the frame's checksum (see README)
        assert imported <= {r["conversations"][0]["value"] for r in records[:3_000]}, "no rows after the damage"


def test_a_file_damaged_before_its_first_record_is_a_one_line_error(db, tmp_path):
    path = tmp_path / "header.jsonl.gz"
    path.write_bytes(b"\x1f\x8b" + b"\x00" * 40)
    with pytest.raises(CommandError, match="header.jsonl.gz: the file is corrupt: its gzip data cannot be decompressed "
                                           "past byte 0 of the content"):
        call_command("import_pairs", str(path), dataset="d", no_progress=True)


# Millions of bad rows: the first ones stored, all counted

def test_a_job_stores_its_first_bad_rows_counts_all_and_says_how_many_more(client, team, tmp_path, settings):
    settings.JOB_MAX_STORED_ERRORS = 50
    path = tmp_path / "empty-objects.jsonl"
    path.write_bytes(jsonl_bytes(generated_pairs(10)) + b"{}\n" * 300)
    report = run_import(path, dataset=team.dataset.name, batch_size=64)
    assert report["imported_pairs"] == 10
    assert [row["line"] for row in report["rejected_rows"]] == list(range(11, 61))
    assert report["rejected_rows_not_stored"] == 250
    job = Job.objects.get(kind="import", dataset=team.dataset)
    assert job.counts["rejected_rows"] == 300 and job.counts["errors_not_stored"] == 250
    assert JobError.objects.filter(job=job).count() == 50
    note = "… and 250 more not stored: a job keeps its first 50 (JOB_MAX_STORED_ERRORS)"

    client.force_login(team.viewer)
    html = client.get(f"/jobs/{job.pk}/").content.decode()
    assert '<dd data-count="rejected_rows">300</dd>' in html
    assert '<dd data-count="errors_not_stored">250</dd>' in html
    assert f'<p class="muted" id="job-errors-not-stored">{note}</p>' in html
    response = client.get(f"/jobs/{job.pk}/errors.csv")
    rows = list(csv.reader(io.StringIO(b"".join(response.streaming_content).decode().lstrip("\ufeff"))))
    assert len(rows) == 1 + 50 + 1
    assert rows[-1] == ["", note, ""]


def test_the_stored_bad_rows_stay_exact_when_an_import_is_resumed(db, tmp_path, settings):
    settings.JOB_MAX_STORED_ERRORS = 100
    lines = [record if i % 2 == 0 else b"{}" for i, record in enumerate(generated_pairs(400))]
    path = tmp_path / "half-bad.jsonl"
    path.write_bytes(jsonl_bytes(lines))
    job = import_interrupted_then_resumed(path, "resumed", batch_size=90)
    assert job.counts["rejected_rows"] == 200 and job.counts["errors_not_stored"] == 100
    assert list(job.errors.values_list("line", flat=True)) == list(range(2, 202, 2))
