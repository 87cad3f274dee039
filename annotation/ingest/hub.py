"""Datasets on the Hugging Face Hub: list a split's Parquet files and stream them to disk.

The Hub converts every public dataset to Parquet and lists the files of a split at
`{HF_ENDPOINT}/api/datasets/{id}/parquet/{config}/{split}` (a JSON list of URLs; without a config,
`/api/datasets/{id}/parquet` maps configs to splits to URLs). The files are downloaded one by one
under MEDIA_ROOT/imports/ and imported as Parquet; with a limit, only as many files as the limit
needs are fetched. A token is read from the environment (HF_TOKEN) when it is set, and never stored.
"""

import json
import os
import re
import urllib.error
import urllib.request
from urllib.parse import quote, urlsplit

from django.conf import settings

HUB_PREFIX = "hf://"
_HUB_ID = re.compile(r"^[A-Za-z0-9][\w.-]*/[A-Za-z0-9][\w.-]*$")
TIMEOUT_SECONDS = 60
CHUNK_BYTES = 1 << 20


class HubError(Exception):
    """The dataset cannot be listed or fetched; the message names it and says why."""


def parse_hub_id(text):
    """'owner/name' from 'owner/name', 'hf://owner/name' or 'hf://datasets/owner/name'; else ValueError."""
    repo_id = text.strip().removeprefix(HUB_PREFIX).removeprefix("datasets/").strip("/")
    if not _HUB_ID.match(repo_id):
        raise ValueError(f"{text!r} is not a Hugging Face dataset id like m-a-p/COIG-P")
    return repo_id


def parquet_urls(repo_id, split, config=None):
    """The URLs of the split's Parquet files, in order. Without a config, the dataset's only
    config (or 'default') is used."""
    if config is None:
        configs = _get_json(repo_id, f"/api/datasets/{quote(repo_id)}/parquet")
        if not isinstance(configs, dict) or not configs:
            raise HubError(f"{repo_id}: the Hub lists no Parquet files for this dataset")
        if "default" in configs or len(configs) == 1:
            config = "default" if "default" in configs else next(iter(configs))
        else:
            raise HubError(f"{repo_id}: choose a config, one of {', '.join(sorted(configs))}")
        splits = configs[config]
        if isinstance(splits, dict) and split not in splits:
            raise HubError(f"{repo_id}: no split {split!r} in config {config!r}; it has {', '.join(sorted(splits))}")
    urls = _get_json(repo_id, f"/api/datasets/{quote(repo_id)}/parquet/{quote(config)}/{quote(split)}")
    if not isinstance(urls, list) or not urls or not all(isinstance(u, str) for u in urls):
        raise HubError(f"{repo_id}: the Hub lists no Parquet files for split {split!r} of config {config!r}")
    return urls


def download(repo_id, url, path, on_bytes=None):
    """Stream `url` to `path` (through `path`.part, so a file that exists is complete)."""
    partial = f"{path}.part"
    try:
        with _open(repo_id, url) as response, open(partial, "wb") as out:
            while chunk := response.read(CHUNK_BYTES):
                out.write(chunk)
                if on_bytes:
                    on_bytes(len(chunk))
    except BaseException:
        if os.path.exists(partial):
            os.remove(partial)
        raise
    os.replace(partial, path)


def _get_json(repo_id, api_path):
    with _open(repo_id, settings.HF_ENDPOINT + api_path) as response:
        try:
            return json.loads(response.read())
        except ValueError:
            raise HubError(f"{repo_id}: the Hub answered {api_path} with something that is not JSON") from None


def _open(repo_id, url):
    request = urllib.request.Request(url, headers={"User-Agent": "coigp-web"})
    token = os.environ.get("HF_TOKEN")
    if token and _same_host(url):
        request.add_unredirected_header("Authorization", f"Bearer {token}")
    opener = urllib.request.build_opener(_TokenRedirects(token))
    try:
        return opener.open(request, timeout=TIMEOUT_SECONDS)
    except urllib.error.HTTPError as exc:
        exc.close()
        reason = {401: "access denied (set HF_TOKEN for a gated or private dataset)",
                  403: "access denied (set HF_TOKEN for a gated or private dataset)",
                  404: "not found on the Hub (check the dataset id, config and split)"}.get(exc.code, exc.reason)
        raise HubError(f"{repo_id}: {reason} (HTTP {exc.code} from {_host(url)})") from None
    except (urllib.error.URLError, OSError) as exc:
        reason = getattr(exc, "reason", exc)
        raise HubError(f"{repo_id}: cannot reach {_host(url)} ({reason})") from None


class _TokenRedirects(urllib.request.HTTPRedirectHandler):
    """Follow redirects, sending the token on only while they stay on the Hub's own host."""

    def __init__(self, token):
        self.token = token

    def redirect_request(self, req, fp, code, msg, headers, newurl):
        new = super().redirect_request(req, fp, code, msg, headers, newurl)
        if new is not None and self.token and _same_host(newurl):
            new.add_unredirected_header("Authorization", f"Bearer {self.token}")
        return new


def _host(url):
    return urlsplit(url).netloc


def _same_host(url):
    return _host(url) == _host(settings.HF_ENDPOINT)
