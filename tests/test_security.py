"""Headers, escaping and deployment settings: model output and user text are hostile HTML; the production
shape passes Django's deployment checks."""

import os
import re
import secrets
import subprocess
import sys

import yaml
from django.conf import settings
from django.urls import reverse

from annotation.models import Job, JobError

from .helpers import Team

HOSTILE = '<script>alert(1)</script><img src=x onerror="alert(2)"><a href="javascript:alert(3)">x</a>'


def test_every_page_sends_a_content_security_policy_without_inline_scripts(client, db):
    team = Team.create()
    client.force_login(team.admin)
    response = client.get(reverse("dataset-detail", args=[team.dataset.pk]))
    policy = response["Content-Security-Policy"]
    assert "script-src 'self'" in policy and "unsafe-inline" not in policy
    assert "object-src 'none'" in policy and "frame-ancestors 'none'" in policy
    assert response["X-Frame-Options"] == "DENY"


def test_hostile_text_is_escaped_on_the_dataset_and_job_pages(client, db):
    team = Team.create(name=HOSTILE)
    team.dataset.description = HOSTILE
    team.dataset.save(update_fields=["description"])
    job = Job.objects.create(kind="import", dataset=team.dataset, params={"original_name": HOSTILE},
                             error=HOSTILE)
    JobError.objects.create(job=job, line=1, reason=HOSTILE)
    client.force_login(team.admin)
    for url in (reverse("dataset-list"), reverse("dataset-detail", args=[team.dataset.pk]),
                reverse("job-detail", args=[job.pk]), reverse("job-list")):
        page = client.get(url).content.decode()
        assert "<script>alert" not in page and "<img src=x" not in page and 'href="javascript:' not in page, url
        assert "&lt;script&gt;alert(1)&lt;/script&gt;" in page, url


def test_htmx_polling_gets_the_progress_fragment_and_stops_when_the_job_ends(client, db):
    team = Team.create()
    job = Job.objects.create(kind="import", dataset=team.dataset, status=Job.Status.RUNNING, total=10, done=4)
    client.force_login(team.viewer)
    response = client.get(reverse("job-detail", args=[job.pk]), HTTP_HX_REQUEST="true")
    body = response.content.decode()
    assert response.status_code == 200 and "<html" not in body
    assert 'id="job-progress"' in body and 'hx-trigger="every 2s"' in body
    Job.objects.filter(pk=job.pk).update(status=Job.Status.SUCCEEDED)
    response = client.get(reverse("job-detail", args=[job.pk]), HTTP_HX_REQUEST="true")
    assert response.status_code == 286 and response["HX-Refresh"] == "true"
    assert "hx-trigger" not in response.content.decode()


# --- The production shape passes Django's deployment checks --------------------------------------------

def _compose_app_environment():
    """The environment docker-compose.yml gives every app service, with each ${VAR:-default} resolved to its
    default as `docker compose up` does when the variable is unset."""
    compose = yaml.safe_load((settings.BASE_DIR / "docker-compose.yml").read_text(encoding="utf-8"))
    values = {}
    for name, value in compose["x-app"]["environment"].items():
        match = re.fullmatch(r"\$\{(\w+)(:-|:\?)([^}]*)\}", str(value))
        values[name] = match.group(3) if match and match.group(2) == ":-" else str(value)
    return values


def test_check_deploy_passes_with_the_docker_compose_environment():
    env = {"PATH": os.environ["PATH"], "HOME": os.environ.get("HOME", "/tmp"), **_compose_app_environment(),
           "DJANGO_SECRET_KEY": secrets.token_urlsafe(50), "COIGP_VAR_DIR": "/nonexistent"}
    assert env["DJANGO_SECURE_SSL_REDIRECT"] == "1" and int(env["DJANGO_SECURE_HSTS_SECONDS"]) >= 31536000
    assert env["DJANGO_SECURE_COOKIES"] == "1"
    result = subprocess.run([sys.executable, "manage.py", "check", "--deploy", "--fail-level", "WARNING"],
                            cwd=settings.BASE_DIR, env=env, capture_output=True, text=True, timeout=120)
    assert result.returncode == 0, result.stderr + result.stdout
    assert "no issues" in result.stdout


def test_check_deploy_names_what_is_missing_without_the_production_settings():
    env = {"PATH": os.environ["PATH"], "HOME": os.environ.get("HOME", "/tmp"), "COIGP_VAR_DIR": "/nonexistent",
           "DATABASE_URL": "postgresql://x@db/x", "REDIS_URL": "redis://redis:6379/0",
           "DJANGO_SECRET_KEY": secrets.token_urlsafe(50)}
    result = subprocess.run([sys.executable, "manage.py", "check", "--deploy", "--fail-level", "WARNING"],
                            cwd=settings.BASE_DIR, env=env, capture_output=True, text=True, timeout=120)
    assert result.returncode != 0
    for check in ("security.W004", "security.W008", "security.W012", "security.W016"):
        assert check in result.stderr
