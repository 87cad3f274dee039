"""Importing a Hugging Face Hub dataset, against a stand-in Hub: a real HTTP server on 127.0.0.1
that serves the Hub's Parquet-listing API and Parquet files this test writes."""

import json
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pyarrow as pa
import pyarrow.parquet as pq
import pytest
from django.core.management import CommandError, call_command
from django.urls import reverse

from annotation import jobs
from annotation.models import Job, Pair

from .conftest import DPO_SAMPLE, shared_data
from .helpers import write_jsonl
from .test_import import run_import
from .test_import_containers import pair_keys, read_jsonl

REPO = "m-a-p/COIG-P"
TOKEN = "hf_test_token_never_stored"


class FakeHub:
    """Serves /api/datasets/{id}/parquet[/{config}/{split}] and the files, and records requests."""

    def __init__(self, files):
        self.files = files  # name -> bytes
        self.requests = []  # (path, Authorization header)
        hub = self

        class Handler(BaseHTTPRequestHandler):
            def do_GET(self):
                hub.requests.append((self.path, self.headers.get("Authorization")))
                base = f"http://127.0.0.1:{hub.port}"
                urls = [f"{base}/api/datasets/{REPO}/parquet/default/train/{name}" for name in sorted(hub.files)]
                if self.path == f"/api/datasets/{REPO}/parquet":
                    return self._json({"default": {"train": urls}})
                if self.path == f"/api/datasets/{REPO}/parquet/default/train":
                    return self._json(urls)
                name = self.path.rsplit("/", 1)[-1]
                if self.path.startswith(f"/api/datasets/{REPO}/parquet/default/train/") and name in hub.files:
                    # Like the Hub: the API URL redirects to a file server on another host.
                    self.send_response(302)
                    self.send_header("Location", f"http://localhost:{hub.port}/cdn/{name}")
                    self.send_header("Content-Length", "0")
                    self.end_headers()
                    return None
                if self.path.startswith("/cdn/") and name in hub.files:
                    body = hub.files[name]
                    self.send_response(200)
                    self.send_header("Content-Length", str(len(body)))
                    self.end_headers()
                    self.wfile.write(body)
                    return None
                self._json({"error": "Repository not found"}, status=404)

            def _json(self, value, status=200):
                body = json.dumps(value).encode()
                self.send_response(status)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

            def log_message(self, *args):
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.port = self.server.server_address[1]
        self.url = f"http://127.0.0.1:{self.port}"
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)
        self.thread.start()

    def fetched(self):
        return [path.rsplit("/", 1)[-1] for path, _auth in self.requests if path.startswith("/cdn/")]

    def close(self):
        self.server.shutdown()
        self.server.server_close()


def parquet_bytes(records, tmp_path, name):
    path = tmp_path / name
    pq.write_table(pa.Table.from_pylist(records), path, row_group_size=50)
    return path.read_bytes()


@pytest.fixture
def hub(db, settings, tmp_path, monkeypatch):
    records = read_jsonl(shared_data(DPO_SAMPLE))
    files = {"0000.parquet": parquet_bytes(records[:120], tmp_path, "a.parquet"),
             "0001.parquet": parquet_bytes(records[120:], tmp_path, "b.parquet")}
    server = FakeHub(files)
    settings.HF_ENDPOINT = server.url
    settings.MEDIA_ROOT = tmp_path / "media"
    monkeypatch.setenv("HF_TOKEN", TOKEN)
    yield server
    server.close()


def test_a_hub_dataset_is_downloaded_only_as_far_as_the_limit_needs_and_imported(hub, tmp_path):
    report = run_import_hub(tmp_path, f"hf://{REPO}", limit=100)
    job = Job.objects.get(dataset__name="hub", kind="import")
    assert job.counts["rows_read"] == 100 and report["rejected_rows"] == []
    assert hub.fetched() == ["0000.parquet"], "the second file is not needed for 100 rows"
    run_import(write_jsonl(tmp_path / "first100.jsonl", read_jsonl(shared_data(DPO_SAMPLE))[:100]), dataset="jsonl")
    assert pair_keys("hub") == pair_keys("jsonl")
    assert job.done == job.total > 0


def test_a_hub_import_without_a_limit_reads_every_file_and_sends_the_token_only_to_the_hub(hub, tmp_path):
    report = run_import_hub(tmp_path, f"hf://{REPO}", split="train", config="default")
    run_import(_copy_dpo(tmp_path), dataset="jsonl")
    assert report["imported_pairs"] == Pair.objects.filter(dataset__name="jsonl").count()
    assert pair_keys("hub") == pair_keys("jsonl")
    assert hub.fetched() == ["0000.parquet", "0001.parquet"]
    api = [auth for path, auth in hub.requests if path.startswith("/api/")]
    cdn = [auth for path, auth in hub.requests if path.startswith("/cdn/")]
    assert api and all(auth == f"Bearer {TOKEN}" for auth in api)
    assert cdn and all(auth is None for auth in cdn), "the token must not follow a redirect to another host"
    job = Job.objects.get(dataset__name="hub", kind="import")
    assert TOKEN not in json.dumps([job.params, job.cursor, job.counts, job.error])


def test_a_missing_hub_dataset_fails_with_one_line_naming_it(hub, tmp_path, db):
    with pytest.raises(CommandError) as error:
        call_command("import_pairs", "hf://someone/missing", dataset="d", no_progress=True)
    message = str(error.value)
    assert "someone/missing" in message and "not found" in message and "HTTP 404" in message
    assert "\n" not in message


def test_an_unreachable_hub_fails_with_one_line_naming_the_dataset(settings, tmp_path, db):
    import socket

    with socket.socket() as s:  # a port with nothing listening
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    settings.HF_ENDPOINT = f"http://127.0.0.1:{port}"
    settings.MEDIA_ROOT = tmp_path / "media"
    with pytest.raises(CommandError, match=rf"^Hugging Face dataset {REPO}: cannot reach 127.0.0.1:{port} \("):
        call_command("import_pairs", f"hf://{REPO}", dataset="d", no_progress=True)


def test_hub_only_options_and_bad_ids_are_refused(db, tmp_path):
    with pytest.raises(CommandError, match="not a Hugging Face dataset id"):
        call_command("import_pairs", "hf://no-slash", dataset="d", no_progress=True)
    with pytest.raises(CommandError, match="--limit and --config apply to hf:// datasets only"):
        call_command("import_pairs", str(_copy_dpo(tmp_path)), dataset="d", limit=5, no_progress=True)
    with pytest.raises(CommandError, match="format 'csv' does not apply to a Hub dataset"):
        call_command("import_pairs", f"hf://{REPO}", dataset="d", format="csv", no_progress=True)


def test_an_admin_imports_a_hub_dataset_from_the_web_form(hub, client, team):
    client.force_login(team.admin)
    url = reverse("import-upload", args=[team.dataset.pk])
    response = client.post(url, {"hub": REPO, "split": "train", "limit": "30", "format": "auto"})
    assert response.status_code == 302
    job = Job.objects.get(dataset=team.dataset)
    assert job.params["hub"] == {"id": REPO, "split": "train", "config": None, "limit": 30}
    assert jobs.execute(job.pk) == Job.Status.SUCCEEDED
    job.refresh_from_db()
    assert job.counts["rows_read"] == 30


def test_the_web_form_refuses_both_or_neither_of_a_file_and_a_hub_dataset_and_bad_ids(client, team):
    client.force_login(team.admin)
    url = reverse("import-upload", args=[team.dataset.pk])
    assert b"Upload a file or name a Hugging Face dataset" in client.post(url, {"format": "auto"}).content
    response = client.post(url, {"hub": "not an id", "format": "auto"})
    assert response.status_code == 400 and b"is not a Hugging Face dataset id" in response.content
    assert client.post(url, {"hub": REPO, "format": "auto"}).status_code == 302
    client.logout()
    client.force_login(team.reviewer)
    assert client.post(url, {"hub": REPO, "format": "auto"}).status_code == 403
    assert Job.objects.filter(dataset=team.dataset).count() == 1


def _copy_dpo(tmp_path):
    path = tmp_path / "dpo.jsonl"
    path.write_bytes(shared_data(DPO_SAMPLE).read_bytes())
    return path


def run_import_hub(tmp_path, source, dataset="hub", **options):
    report = tmp_path / "hub.report.json"
    call_command("import_pairs", source, dataset=dataset, report_json=str(report), no_progress=True, **options)
    return json.loads(report.read_text(encoding="utf-8"))
