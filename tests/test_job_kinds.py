"""Job kinds are declared once (annotation.jobs.job_kind): every kind has a label and a labelled unit, every
count a real job of each kind writes has a label on the job page, and no code makes a job row except
through `create_job`."""

import ast
from pathlib import Path

import pytest
from django.urls import reverse

from annotation import jobs
from annotation.ingest.importer import import_params
from annotation.judging import start_scoring
from annotation.models import Dataset, Job, Judge, Pair, RewardModel, Rubric
from annotation.pairing import BuildParams, start_build
from annotation.rejudging import start_rejudge
from annotation.reward.filtering import filter_params
from annotation.reward.pairwise import pairwise_params
from annotation.reward.training import train_params
from annotation.rubrics import DEFAULT_RUBRICS
from annotation.templatetags.job_counts import UNITS
from review import dashboards, decisions, quality_rules, search
from review.exports import Selection, create_export

from .helpers import Team, write_jsonl
from .llm_server import LLMServer
from .reward_data import learnable_lines, media_root  # noqa: F401

ROOT = Path(__file__).resolve().parent.parent
# The project's own code (tests make rows of any state directly, as fixtures).
SOURCE_DIRS = ("annotation", "review", "coigp_web", "bench", "scripts")


def test_every_kind_has_a_label_and_a_unit_with_a_label():
    assert {"import", "near_duplicates", "search_index", "score", "build_pairs", "train_reward_model",
            "reward_filter", "pairwise_judge", "export", "quality_counts", "dashboard_refresh"} <= set(jobs.KINDS)
    for name, kind in jobs.KINDS.items():
        assert str(kind.label).strip(), name
        assert kind.unit in UNITS, f"{name}: the unit {kind.unit!r} has no label"
        assert all(str(label).strip() for label in kind.count_labels().values()), name


def test_kinds_that_only_read_the_data_are_the_read_only_ones():
    assert set(jobs.read_only_kinds()) == {"search_index", "quality_counts", "dashboard_refresh", "export"}


@pytest.fixture
def server():
    with LLMServer() as srv:
        yield srv


def _run(job):
    jobs.execute(job.pk)
    job.refresh_from_db()
    assert job.status in Job.COMPLETED, (job.kind, job.error)
    return job


def test_every_count_a_job_of_each_kind_writes_has_a_label(client, db, tmp_path, server):
    team = Team.create("every kind")
    dataset = team.dataset
    for domain, text in DEFAULT_RUBRICS.items():
        Rubric.objects.get_or_create(domain=domain, version=1, defaults={"text": text})
    # An import with a rejected row; the jobs that follow it run here.
    path = write_jsonl(tmp_path / "pairs.jsonl", learnable_lines(n_prompts=24, pairs_per_prompt=2) + ["{broken"])
    params = {**import_params(path), **dict.fromkeys(jobs.FOLLOW_UPS, "caller")}
    import_job = _run(jobs.create_job("import", dataset=dataset, params=params, enqueue_it=False))
    for follow in jobs.FOLLOW_UPS:
        _run(jobs.follow_up_of(import_job, follow))
    judge = Judge.objects.create(name="loop", base_url=server.base_url, model="loop-model", max_concurrency=8)
    _run(start_scoring(dataset, judges=[judge]))
    _run(start_build(dataset, BuildParams(min_judges=1), enqueue=False))
    trained = _run(jobs.create_job("train_reward_model", dataset=dataset, params=train_params("kinds"),
                                   enqueue_it=False))
    model = RewardModel.objects.get(pk=trained.cursor["reward_model"])
    _run(jobs.create_job("reward_filter", dataset=dataset, params=filter_params(model), enqueue_it=False))
    _run(jobs.create_job("pairwise_judge", dataset=dataset, params=pairwise_params(judge), enqueue_it=False))
    _run(start_rejudge(dataset, judge, Pair.objects.filter(dataset=dataset), enqueue_it=False))
    _run(create_export(dataset, "trl", Selection(), out_dir=tmp_path / "out", enqueue=False).job)
    _run(jobs.create_job(quality_rules.KIND, dataset=dataset, enqueue_it=False))
    _run(jobs.create_job(dashboards.REFRESH_KIND, dataset=dataset, enqueue_it=False))
    _run(jobs.create_job(search.KIND, dataset=dataset, enqueue_it=False))
    batch = decisions.DecisionBatch.objects.create(dataset=dataset, action="keep", actor=team.admin, reason="kinds")
    _run(jobs.create_job(decisions.DECIDE_KIND, dataset=dataset, params={"batch": batch.pk}, enqueue_it=False))
    _run(jobs.create_job(decisions.UNDO_KIND, dataset=dataset, params={"batch": batch.pk}, enqueue_it=False))

    ran = Job.objects.filter(dataset=dataset)
    assert set(ran.values_list("kind", flat=True)) == set(jobs.KINDS)  # a new kind belongs in this test
    client.force_login(team.admin)
    for job in ran:
        labels = job.kind_info.count_labels()
        unlabelled = [key for key, _value in job.scalar_counts() if key not in labels]
        assert unlabelled == [], f"{job.kind} writes counts without a label"
        html = client.get(reverse("job-detail", args=[job.pk])).content.decode()
        for key, _value in job.scalar_counts():
            assert f"<dt>{labels[key]}</dt>" in html, (job.kind, key)


def _calls_to_job_objects_create(tree):
    for node in ast.walk(tree):
        if (isinstance(node, ast.Call) and isinstance(node.func, ast.Attribute) and node.func.attr == "create"
                and isinstance(node.func.value, ast.Attribute) and node.func.value.attr == "objects"
                and isinstance(node.func.value.value, ast.Name) and node.func.value.value.id == "Job"):
            yield node.lineno


def test_no_code_makes_a_job_row_but_create_job():
    found = [f"{path.relative_to(ROOT)}:{line}"
             for folder in SOURCE_DIRS for path in sorted((ROOT / folder).rglob("*.py"))
             if path != ROOT / "annotation" / "jobs.py"
             for line in _calls_to_job_objects_create(ast.parse(path.read_text(encoding="utf-8")))]
    assert found == []
    assert list(_calls_to_job_objects_create(ast.parse((ROOT / "annotation" / "jobs.py").read_text()))), \
        "the check no longer finds create_job's own call"
