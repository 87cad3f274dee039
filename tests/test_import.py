"""Importing files: formats, containers, duplicates and every kind of bad input."""

import gzip
import json

import pytest
import zstandard
from django.core.management import CommandError, call_command

from annotation.ingest.formats import RowError, detect_format, parse_record
from annotation.management.commands import import_pairs as import_command
from annotation.models import Dataset, Job, Judgement, Pair, Prompt, Response

from .conftest import DPO_SAMPLE, shared_data
from .helpers import sharegpt_line, write_jsonl


def run_import(path, dataset="imports", **options):
    report = path.parent / f"{path.name}.report.json"
    call_command("import_pairs", str(path), dataset=dataset, report_json=str(report), no_progress=True, **options)
    return json.loads(report.read_text(encoding="utf-8"))


def test_it_imports_the_real_sharegpt_sample(db, tmp_path):
    path = tmp_path / "dpo.jsonl"
    path.write_bytes(shared_data(DPO_SAMPLE).read_bytes())
    report = run_import(path)
    lines = [json.loads(line) for line in path.read_text(encoding="utf-8").splitlines()]
    unique = {json.dumps([x["conversations"], x["chosen"], x["rejected"]], ensure_ascii=False) for x in lines}
    assert report["imported_pairs"] == len(unique) == Pair.objects.count()
    assert report["duplicates"] == len(lines) - len(unique)
    assert report["rejected_rows"] == []
    with_system = [x for x in lines if x["conversations"][0]["from"] == "system"]
    assert with_system, "the sample has system turns"
    prompt = Prompt.objects.get(query=with_system[0]["conversations"][-1]["value"])
    assert prompt.system_prompt() == with_system[0]["conversations"][0]["value"]


def test_importing_the_same_file_again_adds_nothing(db, tmp_path):
    path = write_jsonl(tmp_path / "a.jsonl", [sharegpt_line(i) for i in range(5)])
    first = run_import(path)
    counts = (Prompt.objects.count(), Response.objects.count(), Pair.objects.count())
    second = run_import(path)
    assert first["imported_pairs"] == 5 and second["imported_pairs"] == 0 and second["duplicates"] == 5
    assert (Prompt.objects.count(), Response.objects.count(), Pair.objects.count()) == counts


def test_a_second_file_adds_only_what_the_dataset_lacks(db, tmp_path):
    # Old prompt + new response, old responses in a new pair, an old pair, and a new prompt: the writer
    # looks up the rows it may share with the dataset and COPYs the rest in.
    run_import(write_jsonl(tmp_path / "a.jsonl", [sharegpt_line(1), sharegpt_line(2)]))
    ids = set(Response.objects.values_list("pk", flat=True))
    old, reversed_pair = sharegpt_line(1), sharegpt_line(2)
    reversed_pair["chosen"], reversed_pair["rejected"] = reversed_pair["rejected"], reversed_pair["chosen"]
    new_response = dict(old, rejected={"from": "gpt", "value": "第1个回答：换一个差的回答。"})
    report = run_import(write_jsonl(tmp_path / "b.jsonl", [old, reversed_pair, new_response, sharegpt_line(3)]))
    assert (report["imported_pairs"], report["duplicates"]) == (3, 1)
    assert (report["imported_prompts"], report["imported_responses"]) == (1, 3)
    assert (Prompt.objects.count(), Response.objects.count(), Pair.objects.count()) == (3, 7, 5)
    assert ids < set(Response.objects.values_list("pk", flat=True))  # the first file's rows kept their ids
    second = Pair.objects.get(chosen__text=reversed_pair["chosen"]["value"])
    assert {second.chosen_id, second.rejected_id} <= ids  # a new pair of two old responses
    assert sorted(Prompt.objects.values_list("pk", flat=True)) == sorted(set(Pair.objects.values_list("prompt_id", flat=True)))


def test_every_column_holds_exactly_what_the_file_said(db, tmp_path):
    # The rows go in COPY's binary format, encoded by hand: each stored value must read back exactly.
    from django.utils import timezone

    from annotation.ingest.formats import messages_key, text_key

    tricky = 'tab\there, "quotes", back\\slash, \\N, newline\n, emoji 🧪, 中文, ２＋２'
    row = {"domain": "代码", "conversations": [{"from": "system", "value": "你是助手 " + tricky},
                                               {"from": "human", "value": "问：" + tricky}],
           "chosen": {"from": "gpt", "value": "好 " + tricky + "x" * 3000}, "rejected": {"from": "gpt", "value": "差"}}
    responses_row = {"prompt": "另一个问题", "responses": [{"model": "模型-α", "text": "回答 " + tricky, "scores": {"评审": 7}},
                                                       {"model": "", "text": "短"}]}
    started = timezone.now()
    run_import(write_jsonl(tmp_path / "数据 1.jsonl", [row]))
    run_import(write_jsonl(tmp_path / "b.jsonl", [responses_row]))
    finished = timezone.now()

    prompt = Prompt.objects.get(query="问：" + tricky)
    messages = [{"role": "system", "content": "你是助手 " + tricky}, {"role": "user", "content": "问：" + tricky}]
    assert (prompt.messages, prompt.domain, prompt.source, prompt.meta) == (messages, "code", "数据 1.jsonl", {})
    assert prompt.content_hash.hex == messages_key(messages) and prompt.dataset.name == "imports"
    pair = Pair.objects.get()
    assert (pair.prompt_id, pair.domain, pair.dataset_id) == (prompt.pk, "code", prompt.dataset_id)
    assert (pair.origin, pair.status, pair.status_reason) == ("imported", "pending", "")
    assert (pair.chosen.text, pair.rejected.text) == ("好 " + tricky + "x" * 3000, "差")
    for response in Response.objects.all():
        assert response.content_hash.hex == text_key(response.text)
        assert response.prompt.dataset_id == response.dataset_id == prompt.dataset_id
    other = Prompt.objects.get(query="另一个问题")
    assert sorted(other.responses.values_list("model", "text")) == [("", "短"), ("模型-α", "回答 " + tricky)]
    assert Judgement.objects.get().response.text == "回答 " + tricky
    for model in (Prompt, Response, Pair):
        assert all(started <= created <= finished for created in model.objects.values_list("created_at", flat=True))


def test_a_batch_holds_the_datasets_row_lock_until_it_commits(db):
    from django.db import connection, transaction

    from annotation.ingest.writer import DATASET_ROWS_LOCK, write_batch

    dataset = Dataset.objects.create(name="locked")
    line = sharegpt_line(1)
    record = parse_record(line, detect_format(line), domain_override=None, max_chars=100_000)
    with transaction.atomic(), connection.cursor() as cursor:
        write_batch(dataset, [record])
        cursor.execute("SELECT count(*) FROM pg_locks WHERE locktype = 'advisory' AND classid = %s AND objid = %s "
                       "AND pid = pg_backend_pid() AND granted", [DATASET_ROWS_LOCK, dataset.pk])
        assert cursor.fetchone()[0] == 1


def test_responses_shared_by_pairs_of_a_prompt_are_stored_once(db, tmp_path):
    base = sharegpt_line(1)
    other = dict(base, rejected={"from": "gpt", "value": "另一个较差的回答"})
    run_import(write_jsonl(tmp_path / "a.jsonl", [base, other]))
    assert (Prompt.objects.count(), Response.objects.count(), Pair.objects.count()) == (1, 3, 2)


def test_texts_that_differ_only_in_width_or_spacing_are_stored_as_they_are(db, tmp_path):
    rows = [
        {"conversations": [{"from": "human", "value": "２＋２＝？"}], "chosen": {"value": "４"},
         "rejected": {"value": "５"}},
        {"conversations": [{"from": "human", "value": "2+2=?"}], "chosen": {"value": "4"}, "rejected": {"value": "5"}},
        {"conversations": [{"from": "human", "value": "a  b"}], "chosen": {"value": "x"}, "rejected": {"value": "y"}},
        {"conversations": [{"from": "human", "value": "a b"}], "chosen": {"value": "x"}, "rejected": {"value": "y"}},
    ]
    report = run_import(write_jsonl(tmp_path / "a.jsonl", rows))
    assert report["imported_pairs"] == 4 and report["imported_prompts"] == 4 and report["duplicates"] == 0
    assert sorted(Prompt.objects.values_list("query", flat=True)) == sorted(["２＋２＝？", "2+2=?", "a  b", "a b"])
    assert set(Response.objects.values_list("text", flat=True)) == {"４", "５", "4", "5", "x", "y"}


def test_code_answers_that_differ_only_in_indentation_are_a_pair(db, tmp_path):
    good = "```python\ndef f(x):\n    return x\n```"
    bad = "```python\ndef f(x):\nreturn x\n```"
    row = {"conversations": [{"from": "human", "value": "写一个恒等函数"}], "chosen": {"value": good},
           "rejected": {"value": bad}, "domain": "代码"}
    report = run_import(write_jsonl(tmp_path / "a.jsonl", [row]))
    assert report["rejected_rows"] == [] and report["imported_pairs"] == 1
    pair = Pair.objects.get()
    assert (pair.chosen.text, pair.rejected.text) == (good, bad)


def test_an_exact_repeat_is_merged_and_counted_as_a_duplicate(db, tmp_path):
    row = {"conversations": [{"from": "human", "value": "2+2=?"}], "chosen": {"value": "4"}, "rejected": {"value": "5"}}
    spaced = dict(row, chosen={"value": "4 "})
    report = run_import(write_jsonl(tmp_path / "a.jsonl", [row, row, spaced]))
    assert report["imported_pairs"] == 2 and report["duplicates"] == 1
    assert (Prompt.objects.count(), Response.objects.count()) == (1, 3)


@pytest.mark.parametrize("label,domain", [("数学", "math"), ("MATH", "math"), ("角色扮演", "role"),
                                          ("Novel", "novel"), ("逻辑推理", "logic"), ("代码", "code")])
def test_domains_are_read_in_english_or_chinese_any_case(db, tmp_path, label, domain):
    run_import(write_jsonl(tmp_path / "a.jsonl", [sharegpt_line(1, domain=label)]))
    assert Pair.objects.get().domain == domain == Prompt.objects.get().domain


def test_unknown_domain_labels_become_other_and_are_counted(db, tmp_path):
    report = run_import(write_jsonl(tmp_path / "a.jsonl", [sharegpt_line(1, domain="天文"), sharegpt_line(2, domain="天文")]))
    assert report["unknown_domains"] == {"天文": 2}
    assert set(Pair.objects.values_list("domain", flat=True)) == {"other"}


def test_the_domain_option_overrides_the_file(db, tmp_path):
    run_import(write_jsonl(tmp_path / "a.jsonl", [sharegpt_line(1, domain="对话")]), domain="code")
    assert Pair.objects.get().domain == "code"


def test_trl_alpaca_crbench_and_responses_formats(db, tmp_path):
    records = [
        {"prompt": "什么是DPO？", "chosen": "直接偏好优化……", "rejected": "不知道"},
        {"prompt": [{"role": "system", "content": "你是助手"}, {"role": "user", "content": "你好"}],
         "chosen": [{"role": "assistant", "content": "你好！有什么可以帮你？"}],
         "rejected": [{"role": "assistant", "content": "嗯"}]},
        {"chosen": [{"role": "user", "content": "1+1=?"}, {"role": "assistant", "content": "2"}],
         "rejected": [{"role": "user", "content": "1+1=?"}, {"role": "assistant", "content": "3"}]},
    ]
    run_import(write_jsonl(tmp_path / "trl.jsonl", records), dataset="trl")
    assert Pair.objects.filter(dataset__name="trl").count() == 3
    system = Prompt.objects.get(dataset__name="trl", query="你好")
    assert system.messages[0] == {"role": "system", "content": "你是助手"}

    alpaca = [{"instruction": "翻译", "input": "hello", "chosen": "你好", "rejected": "再见"},
              {"instruction": "写诗", "input": "", "output": ["床前明月光", "不会"]}]
    run_import(write_jsonl(tmp_path / "alpaca.jsonl", alpaca), dataset="alpaca")
    assert Prompt.objects.filter(dataset__name="alpaca", query="翻译\nhello").exists()

    crbench = [{"prompt": "证明根号2是无理数", "chosen": "反证法……", "rejected": "显然", "domain": "数学"}]
    run_import(write_jsonl(tmp_path / "cr.jsonl", crbench), dataset="cr")
    assert Pair.objects.get(dataset__name="cr").domain == "math"

    responses = [{"prompt": "介绍长城", "domain": "chat", "responses": [
        {"model": "qwen2-72b-instruct", "text": "长城是……", "scores": {"gpt-4o": 8, "glm-4": 7.5}},
        {"model": "glm-4", "text": "不清楚", "scores": {"gpt-4o": 2}},
    ]}]
    report = run_import(write_jsonl(tmp_path / "resp.jsonl", responses), dataset="resp")
    assert report["imported_responses"] == 2 and report["imported_pairs"] == 0
    assert sorted(Judgement.objects.values_list("judge__name", "score")) == [
        ("glm-4", 7.5), ("gpt-4o", 2.0), ("gpt-4o", 8.0)]
    assert Response.objects.get(text="长城是……").model == "qwen2-72b-instruct"


def test_gzip_and_zstd_files_are_read(db, tmp_path):
    raw = "".join(json.dumps(sharegpt_line(i), ensure_ascii=False) + "\n" for i in range(3)).encode()
    (tmp_path / "a.jsonl.gz").write_bytes(gzip.compress(raw))
    (tmp_path / "b.jsonl.zst").write_bytes(zstandard.ZstdCompressor().compress(raw))
    assert run_import(tmp_path / "a.jsonl.gz", dataset="gz")["imported_pairs"] == 3
    assert run_import(tmp_path / "b.jsonl.zst", dataset="zst")["imported_pairs"] == 3


def test_a_byte_order_mark_is_ignored(db, tmp_path):
    path = tmp_path / "bom.jsonl"
    path.write_bytes(b"\xef\xbb\xbf" + json.dumps(sharegpt_line(1), ensure_ascii=False).encode() + b"\n")
    assert run_import(path)["imported_pairs"] == 1


def test_gb18030_files_are_decoded(db, tmp_path):
    path = tmp_path / "gbk.jsonl"
    path.write_bytes("".join(json.dumps(sharegpt_line(i), ensure_ascii=False) + "\n" for i in range(3)).encode("gb18030"))
    assert run_import(path)["imported_pairs"] == 3
    assert Prompt.objects.filter(query__startswith="第1个问题").exists()


def test_bad_rows_are_listed_with_line_and_reason_and_good_rows_are_kept(db, tmp_path, settings):
    settings.IMPORT_MAX_FIELD_CHARS = 1000
    good = sharegpt_line(1)
    lines = [
        good,                                                                  # 1
        '{"conversations": [{"from": "human", "value": "x"}], "chosen": ',    # 2 malformed
        {"conversations": [{"from": "human", "value": "q"}], "rejected": {"from": "gpt", "value": "r"}},  # 3
        dict(good, chosen={"from": "gpt", "value": "   "}),                  # 4 empty
        dict(good, chosen={"from": "gpt", "value": 42}),                     # 5 wrong type
        dict(good, rejected=good["chosen"]),                                  # 6 identical
        dict(good, chosen={"from": "gpt", "value": "有\u0000空字符"}),         # 7 NUL
        dict(good, chosen={"from": "gpt", "value": "长" * 1001}),             # 8 too long
        "[1, 2]",                                                              # 9 not an object
        {"conversations": [{"from": "gpt", "value": "only an answer"}], "chosen": "a", "rejected": "b"},  # 10
        sharegpt_line(2),                                                      # 11
    ]
    path = write_jsonl(tmp_path / "bad.jsonl", lines)
    with open(path, "ab") as f:
        f.write(b'{"conversations": [{"from": "human", "value": "\xff\xfe"}], "chosen": "a", "rejected": "b"}\n')  # 12
    report = run_import(path)
    reasons = {row["line"]: row["reason"] for row in report["rejected_rows"]}
    assert report["imported_pairs"] == 2
    assert sorted(reasons) == [2, 3, 4, 5, 6, 7, 8, 9, 10, 12]
    assert reasons[2].startswith("malformed JSON")
    assert reasons[3] == "missing field 'chosen'"
    assert reasons[4] == "field 'chosen.value' is empty"
    assert reasons[5] == "field 'chosen.value' must be a string, got int"
    assert reasons[6] == "chosen and rejected are identical"
    assert "NUL byte" in reasons[7] and "'chosen'" in reasons[7]
    assert reasons[8] == "field 'chosen' has 1,001 characters, over the limit of 1,000"
    assert reasons[9] == "expected a JSON object, got list"
    assert "must end with a user (human) turn" in reasons[10]
    assert reasons[12].startswith("not valid UTF-8 (byte 0xff")


def test_an_unknown_format_is_reported_per_row(db, tmp_path):
    path = write_jsonl(tmp_path / "x.jsonl", [{"question": "a", "answer": "b"}, sharegpt_line(1)])
    report = run_import(path)
    reason = report["rejected_rows"][0]["reason"]
    assert reason.startswith("unknown format: the record's fields are question, answer;")
    assert "closest known format is trl" in reason and "--columns prompt=question,chosen=answer" in reason


def test_an_import_in_which_every_row_is_rejected_fails_with_the_rows_listed(db, tmp_path, capsys):
    path = write_jsonl(tmp_path / "bad.jsonl", [{"question": "a", "answer": "b"}, "{broken", "[1, 2]"])
    report = tmp_path / "report.json"
    with pytest.raises(CommandError, match=r"^import failed: 3 of 3 rows rejected \(job \d+\)$") as failed:
        call_command("import_pairs", str(path), dataset="d", report_json=str(report), no_progress=True)
    assert failed.value.returncode == 1
    job = Job.objects.get(kind="import")
    assert job.status == Job.Status.FAILED and job.error == ""
    assert (job.counts["rows_read"], job.counts["rejected_rows"]) == (3, 3)
    assert "line 2: malformed JSON" in capsys.readouterr().out
    written = json.loads(report.read_text(encoding="utf-8"))
    assert written["status"] == "failed" and [r["line"] for r in written["rejected_rows"]] == [1, 2, 3]
    # Nothing was imported: no near-duplicate check or search indexing follows.
    assert not Job.objects.filter(params__after_import=job.pk).exists()


def test_one_bad_row_of_many_finishes_the_import_with_problems(db, tmp_path, capsys):
    path = write_jsonl(tmp_path / "mostly.jsonl", [sharegpt_line(i) for i in range(20)] + ["{broken"])
    command = import_command.Command()
    call_command(command, str(path), dataset="d", no_progress=True)
    assert command.exit_status == 2
    assert "import finished with problems: 1 of 21 rows rejected" in capsys.readouterr().err
    job = Job.objects.get(kind="import")
    assert job.status == Job.Status.PROBLEMS and job.counts["imported_pairs"] == 20
    # What it imported is real: the follow-up jobs ran on it.
    follow_ups = Job.objects.filter(params__after_import=job.pk)
    assert {j.kind: j.status for j in follow_ups} == {"near_duplicates": "succeeded", "search_index": "succeeded"}


def test_a_file_that_cannot_be_read_at_all_exits_non_zero_with_a_reason(db, tmp_path):
    utf16 = tmp_path / "utf16.jsonl"
    utf16.write_bytes(json.dumps(sharegpt_line(1), ensure_ascii=False).encode("utf-16"))
    with pytest.raises(CommandError, match="UTF-16"):
        call_command("import_pairs", str(utf16), dataset="d", no_progress=True)
    with pytest.raises(CommandError, match="no such file"):
        call_command("import_pairs", str(tmp_path / "missing.jsonl"), dataset="d", no_progress=True)
    empty = tmp_path / "empty.jsonl"
    empty.write_text("\n\n")
    with pytest.raises(CommandError, match="cannot tell the container|no records"):
        call_command("import_pairs", str(empty), dataset="d", no_progress=True)


def test_the_dataset_option_creates_a_missing_dataset(db, tmp_path):
    run_import(write_jsonl(tmp_path / "a.jsonl", [sharegpt_line(1)]), dataset="全新")
    assert Dataset.objects.filter(name="全新").exists()


def test_format_detection_names_what_it_saw():
    assert detect_format({"conversations": [], "chosen": 1, "rejected": 2}) == "sharegpt"
    assert detect_format({"prompt": "a", "chosen": "b", "rejected": "c", "domain": "数学"}) == "crbench"
    with pytest.raises(RowError, match=r"fields are a, b; no known format is close"):
        detect_format({"a": 1, "b": 2})
    with pytest.raises(RowError, match=r"fields are Prompt, good, bad; the closest known format is trl .*"
                                       r"try --columns prompt=Prompt,chosen=good,rejected=bad"):
        detect_format({"Prompt": "a", "good": "b", "bad": "c"})
    with pytest.raises(RowError, match=r"closest known format is trl \(prompt, chosen, rejected\), which also needs rejected"):
        detect_format({"prompt": "a", "chosen": "b"})


def test_scores_outside_the_scale_are_rejected():
    record = {"prompt": "q", "responses": [{"text": "a", "scores": {"j": 11}}]}
    with pytest.raises(RowError, match="outside the 1-10 scale"):
        parse_record(record, "responses")


def test_the_migration_rehashes_stored_rows_so_a_file_imported_before_adds_nothing_again(db, tmp_path):
    import importlib

    from django.db import connection

    path = write_jsonl(tmp_path / "a.jsonl", [sharegpt_line(i) for i in range(3)])
    run_import(path)
    # The rows as the normalised hash stored them before (any other hash stands for it here).
    for model in (Prompt, Response):
        for i, pk in enumerate(model.objects.values_list("pk", flat=True)):
            model.objects.filter(pk=pk).update(content_hash=f"00000000-0000-0000-0000-{i:012d}")
    migration = importlib.import_module("annotation.migrations.0014_exact_hash_and_import_indexes")
    migration.rehash(None, connection.schema_editor())
    second = run_import(path)
    assert second["imported_pairs"] == 0 and second["imported_responses"] == 0 and second["duplicates"] == 3


def test_deleting_a_prompt_in_the_admin_deletes_its_responses_and_pairs(db, tmp_path, admin_client):
    # Their references to the prompt carry no database constraint: Django's cascade is what removes them.
    run_import(write_jsonl(tmp_path / "a.jsonl", [sharegpt_line(1), sharegpt_line(2)]))
    prompt = Prompt.objects.get(query__startswith="第1个")
    response = Response.objects.filter(prompt__query__startswith="第2个").first()
    page = admin_client.post(f"/admin/annotation/prompt/{prompt.pk}/delete/", {"post": "yes"})
    assert page.status_code == 302
    page = admin_client.post("/admin/annotation/response/", {"action": "delete_selected", "post": "yes",
                                                              "_selected_action": [response.pk]})
    assert page.status_code == 302
    assert not Response.objects.filter(prompt_id=prompt.pk).exists()
    assert not Pair.objects.exists()  # prompt 1's went with it, prompt 2's with its response
    assert Response.objects.count() == 1 and Prompt.objects.count() == 1


def test_long_texts_are_compressed_with_lz4_where_the_server_has_it(db, tmp_path):
    from django.db import connection

    with connection.cursor() as cursor:
        cursor.execute("SELECT 'lz4' = ANY(enumvals) FROM pg_settings WHERE name = 'default_toast_compression'")
        if not cursor.fetchone()[0]:
            pytest.skip("this PostgreSQL was built without lz4: texts keep pglz")
        line = sharegpt_line(1)
        line["chosen"]["value"] = "这是一个很长、会被压缩的回答。" * 200  # 3,000 characters, 9 KB
        run_import(write_jsonl(tmp_path / "long.jsonl", [line]))
        cursor.execute("SELECT pg_column_compression(text) FROM annotation_response WHERE length(text) = 3000")
        assert cursor.fetchone()[0] == "lz4"


def test_the_prompt_probe_can_only_read_the_hash_index(db):
    # A plan through an index that leads with the dataset would read every prompt of the dataset per probe.
    import psycopg
    from django.db import connection, transaction

    from annotation.ingest.writer import PROMPT_PROBE

    dataset = Dataset.objects.create(name="probed")
    with transaction.atomic(), connection.cursor() as cursor:
        cursor.execute("SET LOCAL enable_seqscan = off")
        with psycopg.Cursor(connection.connection) as raw:
            raw.execute("EXPLAIN " + PROMPT_PROBE, [["0" * 32], dataset.pk])
            plan = "\n".join(row[0] for row in raw.fetchall())
    assert "prompt_unique_hash" in plan and "Index Cond: (content_hash = k.h)" in plan, plan


def test_an_over_long_or_nul_model_name_rejects_its_row_and_the_others_are_imported(db, tmp_path):
    from annotation.ingest.formats import MODEL_MAX_CHARS

    assert Response._meta.get_field("model").max_length == MODEL_MAX_CHARS
    def trl(i, **extra):
        return {"prompt": f"第{i}个问题", "chosen": f"第{i}个好回答", "rejected": f"第{i}个差回答", **extra}

    long_name = trl(1, chosen_model="m" * (MODEL_MAX_CHARS + 1))
    nul_name = {"prompt": "第2个问题", "responses": [{"text": "回答一", "model": "a\x00b"}, {"text": "回答二"}]}
    report = run_import(write_jsonl(tmp_path / "a.jsonl", [long_name, trl(3, chosen_model="qwen")]))
    assert report["imported_pairs"] == 1
    assert [(r["line"], r["reason"]) for r in report["rejected_rows"]] == [
        (1, f"field 'chosen_model' has 201 characters, over the {MODEL_MAX_CHARS} a model name may have")]
    report = run_import(write_jsonl(tmp_path / "b.jsonl", [nul_name]), format="responses")
    assert report["imported_responses"] == 1 and report["dropped_responses"] == 1
    assert report["rejected_rows"] == [{"line": 1, "reason": "field 'responses[0].model' contains a NUL byte (\\x00), "
                                        "which PostgreSQL cannot store (this response was left out; the row's other "
                                        "responses were imported)"}]
