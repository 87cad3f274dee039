"""Management commands: grant, revoke, ensure_admin, load_sample, and the exit status of those that run jobs."""

import os
import subprocess
import sys

import pytest
from django.contrib.auth import get_user_model
from django.core.management import CommandError, call_command

from annotation.models import Dataset, Domain, Job, Judgement, Membership, Pair, Role

from .conftest import ROOT, database_url_for_tests
from .helpers import Team, sharegpt_line, write_jsonl


def test_grant_adds_or_changes_a_role_and_revoke_removes_it(db):
    team = Team.create()
    call_command("grant", team.outsider.username, team.dataset.name, "reviewer")
    assert team.dataset.role_of(team.outsider) == Role.REVIEWER
    call_command("grant", team.outsider.username, team.dataset.name, "admin")
    assert Membership.objects.get(user=team.outsider).role == Role.ADMIN
    call_command("revoke", team.outsider.username, team.dataset.name)
    assert team.dataset.role_of(team.outsider) is None


def test_grant_names_what_does_not_exist(db):
    team = Team.create()
    with pytest.raises(CommandError, match="no user is called 'nobody'"):
        call_command("grant", "nobody", team.dataset.name, "viewer")
    with pytest.raises(CommandError, match="no dataset is called 'nothing'"):
        call_command("grant", team.viewer.username, "nothing", "viewer")
    with pytest.raises(CommandError, match="is not a member"):
        call_command("revoke", team.outsider.username, team.dataset.name)


def test_ensure_admin_takes_the_password_from_the_environment_and_runs_twice(db, monkeypatch, capsys, settings,
                                                                           tmp_path):
    settings.VAR_DIR = tmp_path
    monkeypatch.setenv("COIGP_ADMIN_PASSWORD", "s3cret-from-env")
    call_command("ensure_admin", username="boss")
    call_command("ensure_admin", username="boss")
    boss = get_user_model().objects.get(username="boss")
    assert boss.is_superuser and boss.check_password("s3cret-from-env")
    assert "s3cret-from-env" not in capsys.readouterr().out
    assert not (tmp_path / "admin-password").exists()


@pytest.mark.parametrize("weak", ["1", "password", "qwerty123", "12345678"])
def test_ensure_admin_refuses_a_weak_password_from_the_environment(db, monkeypatch, weak):
    monkeypatch.setenv("COIGP_ADMIN_PASSWORD", weak)
    with pytest.raises(CommandError, match="COIGP_ADMIN_PASSWORD is too weak"):
        call_command("ensure_admin", username="boss")
    assert not get_user_model().objects.filter(username="boss").exists()


def test_a_generated_admin_password_is_kept_in_a_file_only_its_owner_reads(db, monkeypatch, capsys, settings,
                                                                          tmp_path):
    settings.VAR_DIR = tmp_path
    monkeypatch.delenv("COIGP_ADMIN_PASSWORD", raising=False)
    call_command("ensure_admin", username="boss")
    kept = tmp_path / "admin-password"
    username, password = kept.read_text(encoding="utf-8").split()
    assert username == "boss" and get_user_model().objects.get(username="boss").check_password(password)
    assert password in capsys.readouterr().out
    assert kept.stat().st_mode & 0o777 == 0o600


def test_the_sample_data_loads_cleanly_once_and_covers_every_domain(db):
    call_command("load_sample")
    call_command("load_sample")
    dataset = Dataset.objects.get(name="COIG-P sample")
    jobs = Job.objects.filter(dataset=dataset, kind="import")
    assert jobs.count() == 2 and all(j.status == Job.Status.SUCCEEDED for j in jobs)
    assert not any(j.counts["rejected_rows"] for j in jobs)
    domains = set(Pair.objects.filter(dataset=dataset).values_list("domain", flat=True))
    assert domains == {d for d in Domain.values if d != Domain.OTHER}
    assert Pair.objects.filter(dataset=dataset).count() >= 60
    assert Judgement.objects.filter(response__dataset=dataset).count() > 100
    assert any(len(p) > 2 for p in dataset.prompts.values_list("messages", flat=True))


def test_import_pairs_exits_0_2_or_1_as_the_import_succeeded_had_problems_or_failed(transactional_db, tmp_path):
    env = dict(os.environ, DATABASE_URL=database_url_for_tests())

    def import_pairs(name, lines):
        path = write_jsonl(tmp_path / name, lines)
        return subprocess.run([sys.executable, "manage.py", "import_pairs", str(path), "--dataset", "exits",
                               "--no-progress", "--no-near-duplicates"],
                              cwd=ROOT, env=env, capture_output=True, text=True, timeout=120)

    clean = import_pairs("clean.jsonl", [sharegpt_line(i) for i in range(3)])
    assert clean.returncode == 0, clean.stderr
    some = import_pairs("some.jsonl", [sharegpt_line(i) for i in range(3, 6)] + ["{broken"])
    assert some.returncode == 2
    assert "import finished with problems: 1 of 4 rows rejected" in some.stderr
    assert "line 4: malformed JSON" in some.stdout
    none = import_pairs("none.jsonl", ["{broken", "[1]"])
    assert none.returncode == 1
    assert "import failed: 2 of 2 rows rejected" in none.stderr
    statuses = list(Job.objects.filter(kind="import").order_by("pk").values_list("status", flat=True))
    assert statuses == [Job.Status.SUCCEEDED, Job.Status.PROBLEMS, Job.Status.FAILED]


@pytest.mark.parametrize("name", ["import_pairs", "score", "build_pairs", "export_pairs", "reward_filter",
                                  "train_reward_model", "rewardbench", "find_near_duplicates"])
def test_every_command_that_runs_a_job_documents_its_exit_status(name):
    from django.core.management import get_commands, load_command_class

    command = load_command_class(get_commands()[name], name)
    assert "Exit status: 0 succeeded; 1 failed" in command.create_parser("manage.py", name).format_help()


def test_a_command_speaks_the_site_language_whatever_a_request_left_active(db, tmp_path, capsys):
    # A view served in this thread in Chinese leaves zh-hans active; the CLI's report stays in English.
    from django.utils import translation

    from .helpers import sharegpt_line, write_jsonl

    path = write_jsonl(tmp_path / "one-bad.jsonl", [sharegpt_line(i) for i in range(3)] + [{"bad": 1}])
    translation.activate("zh-hans")
    try:
        call_command("import_pairs", str(path), dataset="lang", no_progress=True, no_near_duplicates=True)
    finally:
        translation.deactivate()
    assert "import finished with problems: 1 of 4 rows rejected" in capsys.readouterr().err
