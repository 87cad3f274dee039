"""A thin Python client of the coigp-web REST API (on httpx).

    from coigp_client import Client

    with Client("https://coigp.example", token="coigp_…") as client:   # or Client.from_env()
        dataset = client.datasets.get(3)
        job = dataset.import_file("generated.jsonl").wait()             # progress bar on stderr
        for pair in dataset.pairs.iter(view="judge-spread", domain="math"):
            print(pair["id"], pair["gap"])
        dataset.decide("keep", "panel gap over 2", gap_min=2, status="pending")
        kept = dataset.export(format="trl", statuses=["kept"]).wait().to_hf_dataset()

Every call raises `ApiError` (status, detail, field errors) when the server refuses it.
"""

import json
import os
import sys
import time
from pathlib import Path
from urllib.parse import quote, unquote, urlsplit

import httpx

__all__ = ["ApiError", "Client", "Dataset", "Decision", "Export", "Job", "JobFailed"]

FINISHED = ("succeeded", "problems", "failed", "cancelled")


class ApiError(Exception):
    def __init__(self, status, detail, errors=None):
        self.status, self.detail, self.errors = status, detail, errors or {}
        fields = "; ".join(f"{name}: {' '.join(messages)}" for name, messages in self.errors.items())
        super().__init__(f"{status}: {detail}" + (f" ({fields})" if fields else ""))


class JobFailed(Exception):
    def __init__(self, job):
        self.job = job
        super().__init__(f"job {job.id} ({job.kind}) ended {job.status}: {job.error or 'no error message'}")


class Client:
    def __init__(self, base_url, token, *, timeout=60.0, transport=None):
        self.http = httpx.Client(base_url=base_url.rstrip("/") + "/api/v1/", timeout=timeout, transport=transport,
                                 headers={"Authorization": f"Bearer {token}", "Accept": "application/json"})
        self.datasets = Datasets(self)

    @classmethod
    def from_env(cls, **kwargs):
        """The server at $COIGP_URL with the token in $COIGP_TOKEN."""
        return cls(os.environ["COIGP_URL"], os.environ["COIGP_TOKEN"], **kwargs)

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()

    def close(self):
        self.http.close()

    def request(self, method, path, **kwargs):
        response = self.http.request(method, path, **kwargs)
        if response.status_code >= 400:
            try:
                body = response.json()
            except ValueError:
                body = {"detail": response.text[:500]}
            raise ApiError(response.status_code, body.get("detail", ""), body.get("errors"))
        return response

    def get(self, path, **params):
        return self.request("GET", path, params=_query(params)).json()

    def post(self, path, json=None, **kwargs):
        response = self.request("POST", path, json=json, **kwargs)
        return response.json() if response.content else None

    def job(self, job_id):
        return Job(self, self.get(f"jobs/{job_id}/"))

    def jobs(self, **filters):
        """Jobs of the datasets you see, newest first (filters: dataset, kind, status, limit)."""
        return [Job(self, row) for row in self.get("jobs/", **filters)]

    def export(self, export_id):
        return Export(self, self.get(f"exports/{export_id}/"))


def _query(params):
    """Query parameters without the unset ones; lists repeat their name (domain=math&domain=code)."""
    return [(k, v) for k, value in params.items() if value is not None
            for v in (value if isinstance(value, (list, tuple)) else [value])]


class Datasets:
    def __init__(self, client):
        self.client = client

    def list(self):
        return [Dataset(self.client, row) for row in self.client.get("datasets/")]

    def get(self, dataset_id):
        return Dataset(self.client, self.client.get(f"datasets/{dataset_id}/"))

    def named(self, name):
        for dataset in self.list():
            if dataset.name == name:
                return dataset
        raise LookupError(f"no dataset called {name!r} that you are a member of")

    def create(self, name, description="", is_benchmark=False):
        return Dataset(self.client, self.client.post("datasets/", {"name": name, "description": description,
                                                                   "is_benchmark": is_benchmark}))


class Dataset:
    def __init__(self, client, data):
        self.client, self.data = client, data
        self.id, self.name = data["id"], data["name"]
        self.pairs = Pairs(client, self.id)

    def __repr__(self):
        return f"<Dataset {self.id} {self.name!r}>"

    def _path(self, rest=""):
        return f"datasets/{self.id}/{rest}"

    def refresh(self):
        self.data = self.client.get(self._path())
        return self

    def members(self):
        return self.client.get(self._path("members/"))

    def add_member(self, username, role):
        return self.client.post(self._path("members/"), {"username": username, "role": role})

    def remove_member(self, username):
        """Take `username` off the dataset (ApiError 409 for its last admin)."""
        self.client.request("DELETE", self._path(f"members/{quote(username, safe='')}/"))

    def import_file(self, path, *, format="auto", domain=None, columns=None):
        """Upload a file (JSONL, JSON, CSV or Parquet, optionally .gz/.zst) → the import job. Streamed from disk."""
        path = Path(path)
        fields = {"format": format, "domain": domain or "", "columns": columns or ""}
        with open(path, "rb") as f:
            body = self.client.post(self._path("imports/"), files={"file": (path.name, f)}, data=fields)
        return Job(self.client, body)

    def import_hub(self, hub_id, *, split="train", limit=None, format="auto", domain=None, columns=None):
        """Import a Hugging Face Hub dataset by its id → the import job."""
        body = {"hub": hub_id, "split": split, "limit": limit, "format": format, "domain": domain or "",
                "columns": columns or ""}
        return Job(self.client, self.client.post(self._path("imports/"), {k: v for k, v in body.items()
                                                                           if v is not None}))

    def score(self, judges, **options):
        """Score responses with LLM judges (ids) → job. Options: domains, pair_statuses, rubric_version,
        rescore, force."""
        return Job(self.client, self.client.post(self._path("scoring/"), {"judges": list(judges), **options}))

    def build_pairs(self, **params):
        """Build pairs from the scores → job. Params: judges (names), aggregate, normalise, min_judges,
        threshold, strategy, k, seed, max_pairs_per_prompt, domains."""
        defaults = {"aggregate": "mean", "normalise": "none", "min_judges": 1, "threshold": 2.0, "strategy": "all",
                    "k": 1, "seed": 0}
        return Job(self.client, self.client.post(self._path("pair-builds/"), {**defaults, **params}))

    def reward_models(self):
        return self.client.get(self._path("reward-models/"))

    def train_reward_model(self, name, *, test_fraction=0.5, seed=0):
        body = {"name": name, "test_fraction": test_fraction, "seed": seed}
        return Job(self.client, self.client.post(self._path("reward-models/"), body))

    def reward_filter(self, model_id, *, mode="apply", threshold=0.0):
        """mode: score (rewards only), apply (filter at the margin threshold) or unfilter → job."""
        body = {"mode": mode, "threshold": threshold}
        return Job(self.client, self.client.post(self._path(f"reward-models/{model_id}/filter/"), body))

    def rejudge(self, judge_id, *, limit=500, **filters):
        """Ask a judge, in both orders, about the pairs the filters select → job."""
        from urllib.parse import urlencode

        selection = urlencode(_query(filters))
        return Job(self.client, self.client.post(self._path("rejudge/"), {"judge": judge_id, "limit": limit,
                                                                           "selection": selection}))

    def reviews(self, **filters):
        return self.client.get(self._path("reviews/"), **filters)

    def next_review(self, queue=""):
        """The next pair a review queue hands you ({"pair", "queue", "blind", "messages", "a", "b"}: the two
        responses in the order to judge them), or None when it has none left."""
        return self.client.post(self._path("reviews/next/"), {"queue": queue})

    def review(self, pair, verdict, *, queue="", better_correct=False, prompt_ok=False, note=""):
        """verdict, in the terms next_review showed the pair: a, b, tie or both_bad."""
        body = {"pair": pair, "queue": queue, "verdict": verdict, "better_correct": better_correct,
                "prompt_ok": prompt_ok, "note": note}
        return self.client.post(self._path("reviews/"), body)

    def decide(self, action, reason, *, preview=False, **filters):
        """Keep, discard or swap the pairs the filters select (the pair list's parameters; pair=<id> for one),
        with a reason → Decision (wait() for a large list's job). preview=True: only the counts it would
        change ({"change", "already", "withdrawn"})."""
        from urllib.parse import urlencode

        body = {"action": action, "reason": reason, "selection": urlencode(_query(filters)), "confirm": not preview}
        answer = self.client.post(self._path("decisions/"), body)
        return answer if preview else Decision(self.client, answer)

    def decisions(self, policy=False):
        return [Decision(self.client, row) for row in self.client.get(self._path("decisions/"),
                                                                        policy="1" if policy else None)]

    def export(self, format="trl", **selection):
        """Export pairs → Export (wait, download, to_hf_dataset). Selection: statuses, domains, min_gap, split,
        seed, limit, with_meta, bom, raw_csv."""
        body = {"format": format, "statuses": ["pending", "kept"], **selection}
        return Export(self.client, self.client.post(self._path("exports/"), body))


class Decision:
    def __init__(self, client, data):
        self.client = client
        self._set(data)

    def _set(self, data):
        self.data = data
        self.id, self.action, self.changed = data["id"], data["action"], data["changed"]
        self.path = f"datasets/{data['dataset']}/decisions/{self.id}/"
        self.job = Job(self.client, data["job"]) if data.get("job") else None

    def __repr__(self):
        return f"<Decision {self.id} {self.action} changed={self.changed}>"

    def refresh(self):
        self._set(self.client.get(self.path))
        return self

    def wait(self, **kwargs):
        """Until a large list's job has changed every pair (a small list is decided at once)."""
        if self.job is not None:
            self.job.wait(**kwargs)
        return self.refresh()

    def undo(self):
        """Put back each pair's status from before (unless something changed it since)."""
        self._set(self.client.post(f"{self.path}undo/"))
        return self


class Pairs:
    def __init__(self, client, dataset_id):
        self.client, self.path = client, f"datasets/{dataset_id}/pairs/"

    def iter(self, *, page_size=200, **filters):
        """Every pair the filters select (the pair list's parameters: view, domain, status, q, judge, gap_min,
        …), as rows, a page at a time by keyset."""
        after = None
        while True:
            page = self.client.get(self.path, after=after, limit=page_size, **filters)
            yield from page["results"]
            after = page["next_after"]
            if after is None:
                return

    def get(self, pair_id):
        """One pair with its texts, judgements, rewards, flagging rules, reviews and pairwise verdicts."""
        return self.client.get(f"{self.path}{pair_id}/")


class Job:
    def __init__(self, client, data):
        self.client = client
        self._set(data)

    def _set(self, data):
        self.data = data
        self.id, self.kind, self.status, self.error = data["id"], data["kind"], data["status"], data["error"]

    def __repr__(self):
        return f"<Job {self.id} {self.kind} {self.status} {self.data['done']}/{self.data['total']}>"

    @property
    def finished(self):
        return self.status in FINISHED

    def refresh(self):
        self._set(self.client.get(f"jobs/{self.id}/"))
        return self

    def cancel(self):
        self._set(self.client.post(f"jobs/{self.id}/cancel/"))
        return self

    def wait(self, *, progress=True, poll=1.0, timeout=None, raise_on_failure=True):
        """Poll until the job ends, with a progress bar (tqdm, on stderr) unless progress=False. Raises
        JobFailed when it failed or was cancelled (raise_on_failure=False returns it instead)."""
        bar = _bar(self) if progress else None
        deadline = None if timeout is None else time.monotonic() + timeout
        try:
            while not self.finished:
                if deadline is not None and time.monotonic() > deadline:
                    raise TimeoutError(f"job {self.id} still {self.status} after {timeout} s")
                time.sleep(poll)
                self.refresh()
                if bar is not None:
                    bar.total = self.data["total"] or None
                    bar.n = self.data["done"]
                    bar.set_postfix_str(self.status, refresh=False)
                    bar.refresh()
        finally:
            if bar is not None:
                bar.close()
        if raise_on_failure and self.status in ("failed", "cancelled"):
            raise JobFailed(self)
        return self


def _bar(job):
    try:
        from tqdm import tqdm
    except ImportError:
        return None
    return tqdm(total=job.data["total"] or None, initial=job.data["done"], unit=f" {job.data['unit']}",
                desc=f"{job.kind} #{job.id}", file=sys.stderr, unit_scale=True)


class Export:
    def __init__(self, client, data):
        self.client = client
        self._set(data)

    def _set(self, data):
        self.data = data
        self.id, self.format, self.files = data["id"], data["format"], data["files"]
        self.job = Job(self.client, data["job"]) if data.get("job") else None

    def refresh(self):
        self._set(self.client.get(f"exports/{self.id}/"))
        return self

    def wait(self, **kwargs):
        if self.job is not None:
            self.job.wait(**kwargs)
        return self.refresh()

    def download(self, directory):
        """Download every file of the export into `directory`; returns their paths."""
        directory = Path(directory)
        directory.mkdir(parents=True, exist_ok=True)
        paths = []
        for f in self.files:
            path = directory / Path(unquote(urlsplit(f["url"]).path)).name
            with self.client.http.stream("GET", f["url"]) as response:
                if response.status_code >= 400:
                    raise ApiError(response.status_code, f"downloading {f['name']} failed")
                with open(path, "wb") as out:
                    for chunk in response.iter_bytes():
                        out.write(chunk)
            paths.append(path)
        return paths

    def rows(self, split=None):
        """The exported records of the JSONL data files (of one split when given)."""
        for f in self.files:
            if f.get("kind") != "data" or not f["name"].endswith(".jsonl") or split and f.get("split") != split:
                continue
            response = self.client.request("GET", f["url"])
            for line in response.text.splitlines():
                if line.strip():
                    yield json.loads(line)

    def to_hf_dataset(self, split=None):
        """The exported pairs as a Hugging Face `datasets.Dataset` (needs `pip install datasets`)."""
        try:
            import datasets
        except ImportError:
            raise ImportError("to_hf_dataset needs the Hugging Face datasets package: pip install datasets") from None
        return datasets.Dataset.from_list(list(self.rows(split)))
