"""Web uploads: streamed to disk, and stopped while streaming when over IMPORT_MAX_UPLOAD_BYTES."""

import json
from pathlib import Path

import pytest
from django.core.files.uploadedfile import SimpleUploadedFile
from django.template.defaultfilters import filesizeformat
from django.urls import reverse

from annotation.forms import too_large_message
from annotation.models import Job

from .helpers import sharegpt_line


@pytest.fixture
def upload_dirs(settings, tmp_path):
    settings.MEDIA_ROOT = tmp_path / "media"
    settings.FILE_UPLOAD_TEMP_DIR = str(tmp_path / "media" / "imports" / "incoming")
    return Path(settings.MEDIA_ROOT) / "imports"


def jsonl_bytes(n):
    return "".join(json.dumps(sharegpt_line(i), ensure_ascii=False) + "\n" for i in range(n)).encode()


def files_under(directory):
    return sorted(p.relative_to(directory).as_posix() for p in directory.rglob("*") if p.is_file())


@pytest.mark.parametrize("limit", [1000, 100 * 1024], ids=["stopped-at-a-chunk", "stopped-by-content-length"])
def test_an_upload_over_the_limit_is_stopped_with_a_clear_message_and_leaves_no_file(
    client, team, settings, upload_dirs, limit
):
    settings.IMPORT_MAX_UPLOAD_BYTES = limit
    body = jsonl_bytes(1 + 4 * limit // 100)
    assert len(body) > limit + 64 * 1024 or limit == 1000
    client.force_login(team.admin)
    response = client.post(reverse("import-upload", args=[team.dataset.pk]),
                           {"file": SimpleUploadedFile("big.jsonl", body), "format": "auto"})
    assert response.status_code == 400
    assert f"The file is larger than the {filesizeformat(limit)} limit." in response.content.decode()
    assert not Job.objects.exists()
    if limit == 1000:
        assert (upload_dirs / "incoming").is_dir(), "the upload had started streaming to disk"
    assert files_under(upload_dirs) == [], "the partial upload is deleted"


def test_the_message_names_the_limit_in_gigabytes(settings):
    settings.IMPORT_MAX_UPLOAD_BYTES = 5 * 1024**3
    assert str(too_large_message()).replace("\xa0", " ") == "The file is larger than the 5.0 GB limit."


def test_a_small_upload_also_streams_to_a_file_and_is_moved_into_place(client, team, settings, upload_dirs):
    settings.IMPORT_MAX_UPLOAD_BYTES = 10_000
    body = jsonl_bytes(3)
    assert settings.FILE_UPLOAD_HANDLERS == ["annotation.uploads.LimitedTemporaryFileUploadHandler"]
    client.force_login(team.admin)
    response = client.post(reverse("import-upload", args=[team.dataset.pk]),
                           {"file": SimpleUploadedFile("small.jsonl", body), "format": "auto", "columns": ""})
    assert response.status_code == 302
    job = Job.objects.get()
    stored = Path(job.params["path"])
    assert stored.read_bytes() == body and stored.name == "small.jsonl"
    assert files_under(upload_dirs) == [stored.relative_to(upload_dirs).as_posix()], "no temporary copy is left"


def test_a_bad_column_mapping_on_the_form_is_refused_with_the_reason(client, team, upload_dirs):
    client.force_login(team.admin)
    response = client.post(reverse("import-upload", args=[team.dataset.pk]), {
        "file": SimpleUploadedFile("a.csv", b"q,a,b\n1,2,3\n"), "format": "csv", "columns": "prompt=q,answer=a"})
    assert response.status_code == 400
    assert "unknown field &#x27;answer&#x27; in the column mapping" in response.content.decode()
    assert not Job.objects.exists()
    assert files_under(upload_dirs) == [], "a refused upload's temporary file is deleted"


def test_a_csv_upload_with_a_column_mapping_creates_a_job_with_that_mapping(client, team, upload_dirs):
    client.force_login(team.admin)
    response = client.post(reverse("import-upload", args=[team.dataset.pk]), {
        "file": SimpleUploadedFile("a.csv", "问,好,差\n1+1,2,3\n".encode()), "format": "csv",
        "columns": "prompt=问,chosen=好,rejected=差"})
    assert response.status_code == 302
    job = Job.objects.get()
    assert job.params["container"] == "csv"
    assert job.params["columns"] == {"prompt": "问", "chosen": "好", "rejected": "差"}
