"""Management commands: grant, revoke, ensure_admin, load_sample."""

import pytest
from django.contrib.auth import get_user_model
from django.core.management import CommandError, call_command

from annotation.models import Dataset, Domain, Job, Judgement, Membership, Pair, Role

from .helpers import Team


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
