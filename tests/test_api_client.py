"""coigp_client against a live server and a real Celery worker, through the API only: import a generation
pipeline's file, score it with a loopback judge, build pairs, look at them, decide, export and pull the rows."""

import hashlib
import importlib.util
import json

import pytest

from annotation.models import Judge, Rubric
from annotation.rubrics import DEFAULT_RUBRICS
from api.tokens import create_token
from coigp_client import ApiError, Client, JobFailed

from .helpers import Team
from .llm_server import LLMServer, Reply

pytestmark = pytest.mark.worker

DOMAINS = ["chat", "code", "math", "logic", "novel", "role"]


def _pipeline_file(path, n_prompts=6):
    """What a generation pipeline writes: a prompt and its models' responses, no scores yet."""
    with open(path, "w", encoding="utf-8") as f:
        for i in range(n_prompts):
            record = {"prompt": f"第{i}个问题：请解释这个概念。", "domain": DOMAINS[i % 6],
                      "responses": [{"model": "gen-a", "text": f"GOOD 第{i}个回答：详细而准确的解释。"},
                                    {"model": "gen-b", "text": f"BAD 第{i}个回答：不知道。"}]}
            f.write(json.dumps(record, ensure_ascii=False) + "\n")
    return path


@pytest.fixture
def api(live_server, thread_worker, settings):
    for domain, text in DEFAULT_RUBRICS.items():
        Rubric.objects.get_or_create(domain=domain, version=1, defaults={"text": text})
    team = Team.create("api 端到端")
    team.admin.is_staff = True
    team.admin.save(update_fields=["is_staff"])
    _token, secret = create_token(team.admin, "pipeline")
    with Client(live_server.url, secret, timeout=30) as client:
        yield team, client


def test_import_score_build_decide_and_export_through_the_client_only(api, tmp_path):
    team, client = api
    dataset = client.datasets.create("流水线输出")
    dataset.add_member(team.reviewer.username, "reviewer")
    assert {m["username"]: m["role"] for m in dataset.members()} == {team.admin.username: "admin",
                                                                     team.reviewer.username: "reviewer"}

    job = dataset.import_file(_pipeline_file(tmp_path / "generated.jsonl")).wait(progress=False, poll=0.2, timeout=120)
    assert job.status == "succeeded", job.data
    assert dataset.refresh().data["by_domain"]["math"] == {"prompts": 1, "responses": 2, "pairs": 0}

    with LLMServer() as server:
        server.when("GOOD", Reply(content="分析：解释准确完整。\n总体评分：[9]"))
        server.when("BAD", Reply(content="分析：没有回答问题。\n总体评分：[2]"))
        judge = Judge.objects.create(name="loopback", base_url=server.base_url, model="m", max_concurrency=4)
        scored = dataset.score([judge.pk]).wait(progress=False, poll=0.2, timeout=120)
    assert scored.status == "succeeded" and scored.data["counts"]["ok"] == 12, scored.data

    built = dataset.build_pairs(threshold=2.0, min_judges=1).wait(progress=False, poll=0.2, timeout=120)
    assert built.status == "succeeded", built.data
    pairs = list(dataset.pairs.iter(page_size=4))  # two pages and a bit: the keyset walk
    assert len(pairs) == 6 and len({p["id"] for p in pairs}) == 6
    assert all(p["gap"] == 7.0 and p["chosen_excerpt"].startswith("GOOD") for p in pairs)
    math = list(dataset.pairs.iter(domain="math", status="pending"))
    assert [p["domain"] for p in math] == ["math"]
    detail = dataset.pairs.get(math[0]["id"])
    assert detail["chosen"]["text"].startswith("GOOD 第2个")
    assert [(j["judge"], j["score"]) for j in detail["chosen"]["judgements"]] == [("loopback", 9.0)]

    # Decide: keep the five pairs outside math (bulk, by the list's filters), discard the math one; look first.
    others = ["chat", "code", "logic", "novel", "role"]
    assert dataset.decide("keep", "panel gap 7", preview=True, domain=others) == {"change": 5, "already": 0,
                                                                                   "withdrawn": 0}
    kept = dataset.decide("keep", "panel gap 7", domain=others).wait(progress=False, poll=0.2, timeout=120)
    assert kept.changed == 5
    discarded = dataset.decide("discard", "checked by hand", pair=math[0]["id"])
    assert discarded.changed == 1 and dataset.pairs.get(math[0]["id"])["status"] == "filtered"
    assert [d.id for d in dataset.decisions()] == [discarded.id, kept.id]

    export = dataset.export(format="trl", statuses=["kept"]).wait(progress=False, poll=0.2, timeout=120)
    assert export.job.status == "succeeded"
    rows = list(export.rows())
    assert len(rows) == 5 and {r["domain"] for r in rows} == set(others)
    # trl completions begin with the separator TRL's standard format expects.
    assert all(r["chosen"].startswith("\nGOOD") and r["rejected"].startswith("\nBAD") for r in rows)
    assert discarded.undo().data["restored"] == 1 and dataset.pairs.get(math[0]["id"])["status"] == "pending"
    paths = export.download(tmp_path / "out")
    by_name = {f["name"]: f for f in export.files}
    for path in paths:
        if by_name[path.name].get("sha256"):
            assert hashlib.sha256(path.read_bytes()).hexdigest() == by_name[path.name]["sha256"]
    if importlib.util.find_spec("datasets") is not None:  # the README's last step, where datasets is installed
        table = export.to_hf_dataset()
        assert table.num_rows == 5 and set(table.column_names) >= {"prompt", "chosen", "rejected"}


def test_the_client_reports_refusals_and_failed_jobs(api, tmp_path, capsys):
    team, client = api
    dataset = client.datasets.create("拒绝")
    with pytest.raises(ApiError) as refused:
        dataset.build_pairs(threshold=-1)
    assert refused.value.status == 400 and "threshold" in refused.value.errors
    with pytest.raises(ApiError) as missing:
        client.datasets.get(dataset.id + 1000)
    assert missing.value.status == 404
    bad = tmp_path / "bad.jsonl"
    bad.write_text("not json\n", encoding="utf-8")
    with pytest.raises(JobFailed) as failed:
        dataset.import_file(bad).wait(poll=0.2, timeout=120)
    assert f"import #{failed.value.job.id}" in capsys.readouterr().err  # the progress bar
    assert failed.value.job.status == "failed"
    assert client.job(failed.value.job.id).status == "failed"
