"""Raw judgements out: the download (permissions, content) and `manage.py export_judgements`."""

from decimal import Decimal

import orjson
import pytest
from django.core.management import CommandError, call_command
from django.urls import reverse

from annotation.models import Judgement

from .helpers import Team
from .judged import judge, rubric, scored_prompt


@pytest.fixture
def judged(team):
    responses = scored_prompt(team.dataset, "什么是递归？", {"A": {"gpt-4o": 9}, "B": {"glm-4": 3.5}}, domain="code")
    Judgement.objects.create(
        response=responses["A"], judge=judge("qwen2-72b"), rubric=rubric("code", 2), score=7, status="ok",
        analysis="分析：<b>正确</b>，但缺少例子。[7]", input_tokens=812, output_tokens=95, cost=Decimal("0.001234"),
        latency_ms=930,
    )
    Judgement.objects.create(response=responses["B"], judge=judge("qwen2-72b"), rubric=rubric("code", 2),
                             status="parse_error", raw_output="没有分数")
    other = Team.create("另一个")
    scored_prompt(other.dataset, "别的数据集", {"X": {"gpt-4o": 5}})
    return team, responses


def lines(content):
    return [orjson.loads(line) for line in content.splitlines()]


@pytest.mark.parametrize("role,status", [("admin", 200), ("reviewer", 200), ("viewer", 200), ("outsider", 404)])
def test_the_download_is_for_dataset_members(client, judged, role, status):
    team, _ = judged
    client.force_login(getattr(team, role))
    assert client.get(reverse("judgements-download", args=[team.dataset.pk])).status_code == status


def test_the_download_needs_a_login_and_a_get(client, judged):
    team, _ = judged
    url = reverse("judgements-download", args=[team.dataset.pk])
    assert client.get(url)["Location"].startswith(reverse("login"))
    client.force_login(team.admin)
    assert client.post(url).status_code == 405


def test_the_download_streams_one_line_per_judgement_of_the_dataset(client, judged):
    team, responses = judged
    client.force_login(team.viewer)
    response = client.get(reverse("judgements-download", args=[team.dataset.pk]))
    assert response.streaming and response["Content-Type"] == "application/x-ndjson"
    assert f'filename="dataset-{team.dataset.pk}-judgements.jsonl"' in response["Content-Disposition"]
    rows = lines(b"".join(response.streaming_content))
    assert len(rows) == 4 == Judgement.objects.filter(response__dataset=team.dataset).count()
    a = responses["A"]
    assert rows[2] == {
        "prompt_id": a.prompt_id, "domain": "code", "response_id": a.pk, "response_hash": str(a.content_hash),
        "generator_model": "model-A", "judge": "qwen2-72b", "rubric_version": 2, "score": 7.0, "status": "ok",
        "analysis": "分析：<b>正确</b>，但缺少例子。[7]", "input_tokens": 812, "output_tokens": 95, "cost": "0.001234",
        "latency_ms": 930, "created_at": rows[2]["created_at"],
    }
    imported = rows[0]
    assert (imported["judge"], imported["rubric_version"], imported["score"], imported["cost"]) == (
        "gpt-4o", None, 9.0, "0.000000")
    assert (rows[3]["status"], rows[3]["score"]) == ("parse_error", None)


def test_export_judgements_writes_the_same_lines_as_the_download(client, judged, tmp_path, capsys):
    team, _ = judged
    out = tmp_path / "judgements.jsonl"
    call_command("export_judgements", dataset=team.dataset.name, out=str(out), no_progress=True)
    client.force_login(team.viewer)
    downloaded = b"".join(client.get(reverse("judgements-download", args=[team.dataset.pk])).streaming_content)
    assert out.read_bytes() == downloaded
    assert "4 judgements written" in capsys.readouterr().out


def test_export_judgements_names_what_is_wrong(judged, tmp_path):
    with pytest.raises(CommandError, match="no dataset is called 'nothing'"):
        call_command("export_judgements", dataset="nothing", out=str(tmp_path / "x.jsonl"), no_progress=True)
    with pytest.raises(CommandError, match="No such file or directory"):
        call_command("export_judgements", dataset=judged[0].dataset.name, out=str(tmp_path / "no" / "x.jsonl"),
                     no_progress=True)


def test_the_download_streams_outside_a_transaction_too(client, transactional_db, monkeypatch):
    # Autocommit, as in production: the server-side cursor must outlive the view's return and
    # serve several fetches.
    monkeypatch.setattr("annotation.judgement_export.CHUNK_SIZE", 2)
    team = Team.create("流式")
    for i in range(3):
        scored_prompt(team.dataset, f"问题{i}", {"A": {"gpt-4o": 8, "glm-4": 7}, "B": {"gpt-4o": 3}})
    client.force_login(team.viewer)
    response = client.get(reverse("judgements-download", args=[team.dataset.pk]))
    rows = lines(b"".join(response.streaming_content))
    assert len(rows) == 9 and {r["judge"] for r in rows} == {"gpt-4o", "glm-4"}
    assert [r["prompt_id"] for r in rows] == sorted(r["prompt_id"] for r in rows)
