"""Import the same pairs into Label Studio and into coigp-web, one after the other in one run (issue 17).

    .venv/bin/python bench/ingest_vs_label_studio.py --input FILE [--label-studio PATH] [--port 8091]

FILE is a sharegpt-style JSONL file such as ../shared/bench/gen_pairs.py writes. Label Studio is not a
dependency of this project (its tree is hundreds of packages): install it into a virtual environment of
its own and pass its executable, e.g.

    python3 -m venv /tmp/lsvenv && /tmp/lsvenv/bin/pip install label-studio==1.23.2 "sentry-sdk<3"
    .venv/bin/python bench/ingest_vs_label_studio.py --input pairs.jsonl --label-studio /tmp/lsvenv/bin/label-studio

Label Studio reads neither JSONL nor nested turns: each row becomes a task {prompt, answer1, answer2,
domain} (the last user turn, chosen, rejected) in one JSON file, written before the clock starts. Label
Studio starts on a fresh SQLite data directory with a pairwise labelling project, the file goes through
its import API (`POST /api/projects/ID/import`, which answers when the tasks are stored), and the bench
checks the task count. Before that, `bench/ingest.py --input FILE` imports the original file into
PostgreSQL and runs the follow-up jobs (near-duplicates, search filters), each timed. CPU seconds of Label Studio's
server processes are read from /proc, as bench/ingest.py reads PostgreSQL's.

What each does is not the same work: Label Studio stores each row as one JSON task; coigp-web validates
and splits it into prompt, responses and pair, merges repeats by exact text, and indexes for search and
near-duplicates.
"""

import argparse
import json
import os
import re
import secrets
import shutil
import subprocess
import sys
import tempfile
import time
import urllib.error
import urllib.request
import uuid
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
PAIRWISE_CONFIG = """<View>
  <Text name="prompt" value="$prompt"/>
  <Pairwise name="preference" toName="answer1,answer2"/>
  <Text name="answer1" value="$answer1"/>
  <Text name="answer2" value="$answer2"/>
</View>"""


def label_studio_tasks(source, target):
    """Write FILE's rows as Label Studio tasks (a JSON list); returns how many."""
    count = 0
    with open(source, encoding="utf-8") as rows, open(target, "w", encoding="utf-8") as out:
        out.write("[")
        for line in rows:
            if not line.strip():
                continue
            row = json.loads(line)
            turns = row.get("conversations") or []
            task = {"prompt": turns[-1]["value"] if turns else "", "answer1": row["chosen"]["value"],
                    "answer2": row["rejected"]["value"], "domain": row.get("domain", "")}
            out.write(("," if count else "") + json.dumps(task, ensure_ascii=False))
            count += 1
        out.write("]")
    return count


def process_tree_cpu(root_pid):
    """CPU seconds of a process and its descendants (Linux /proc)."""
    children, cpu = {}, {}
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            fields = (entry / "stat").read_text().rsplit(")", 1)[1].split()
        except OSError:
            continue
        children.setdefault(int(fields[1]), []).append(int(entry.name))
        cpu[int(entry.name)] = (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")
    total, stack = 0.0, [root_pid]
    while stack:
        pid = stack.pop()
        total += cpu.get(pid, 0.0)
        stack += children.get(pid, [])
    return total


def api(port, token, method, path, body=None, files=None):
    headers = {"Authorization": f"Token {token}"}
    data = None
    if files:
        boundary = uuid.uuid4().hex
        name, content = files
        data = (f"--{boundary}\r\nContent-Disposition: form-data; name=\"file\"; filename=\"{name}\"\r\n"
                "Content-Type: application/json\r\n\r\n").encode() + content + f"\r\n--{boundary}--\r\n".encode()
        headers["Content-Type"] = f"multipart/form-data; boundary={boundary}"
    elif body is not None:
        data = json.dumps(body).encode()
        headers["Content-Type"] = "application/json"
    request = urllib.request.Request(f"http://127.0.0.1:{port}{path}", data=data, headers=headers, method=method)
    try:
        with urllib.request.urlopen(request, timeout=3600) as response:
            return json.loads(response.read() or b"null")
    except urllib.error.HTTPError as exc:
        sys.exit(f"Label Studio answered {method} {path} with {exc.code}: {exc.read()[:500]!r}")


def wait_healthy(port, server, limit=600):
    started = time.perf_counter()
    while time.perf_counter() - started < limit:
        if server.poll() is not None:
            sys.exit(f"Label Studio exited with {server.returncode} before it answered")
        try:
            with urllib.request.urlopen(f"http://127.0.0.1:{port}/health", timeout=5):
                return time.perf_counter() - started
        except (urllib.error.URLError, ConnectionError, TimeoutError):
            time.sleep(1)
    sys.exit(f"Label Studio did not answer on port {port} within {limit} s")


def run_label_studio(executable, tasks_path, expected, port, workdir):
    token = secrets.token_hex(20)
    data_dir = workdir / "label-studio-data"
    log = open(workdir / "label-studio.log", "w")
    # Its upload limit (250 MB by default, TASKS_MAX_FILE_SIZE follows it) is raised to take the whole file.
    env = {**os.environ, "LABEL_STUDIO_BASE_DATA_DIR": str(data_dir), "DJANGO_DB": "sqlite",
           "DATA_UPLOAD_MAX_MEMORY_SIZE": str(max(250 << 20, 2 * tasks_path.stat().st_size))}
    server = subprocess.Popen(
        [executable, "start", "--no-browser", "--data-dir", str(data_dir), "--port", str(port),
         "--username", "bench@example.com", "--password", secrets.token_hex(8), "--user-token", token,
         "--enable-legacy-api-token"], stdout=log, stderr=subprocess.STDOUT, env=env)
    try:
        startup = wait_healthy(port, server)
        print(f"Label Studio answered after {startup:.0f} s (first start: database migrations)")
        project = api(port, token, "POST", "/api/projects", {"title": "bench pairs", "label_config": PAIRWISE_CONFIG})
        content = tasks_path.read_bytes()
        cpu, started = process_tree_cpu(server.pid), time.perf_counter()
        answer = api(port, token, "POST", f"/api/projects/{project['id']}/import", files=(tasks_path.name, content))
        elapsed = time.perf_counter() - started
        cpu = process_tree_cpu(server.pid) - cpu
        stored = api(port, token, "GET", f"/api/projects/{project['id']}")["task_number"]
        if stored != expected:
            sys.exit(f"Label Studio stored {stored} tasks of {expected}: {answer}")
        print(f"Label Studio import: {stored:,} tasks in {elapsed:.1f} s = {stored / elapsed:,.0f} tasks/s, "
              f"server CPU {cpu:.1f} s (load average {os.getloadavg()[0]:.1f})")
        return elapsed
    finally:
        server.terminate()
        try:
            server.wait(30)
        except subprocess.TimeoutExpired:
            server.kill()
        log.close()


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--input", type=Path, required=True)
    parser.add_argument("--label-studio", default=shutil.which("label-studio"),
                        help="the label-studio executable (default: the one on PATH)")
    parser.add_argument("--port", type=int, default=8091)
    args = parser.parse_args()
    if not args.label_studio:
        sys.exit("no label-studio executable: install it in a virtual environment of its own (see the docstring) "
                 "and pass --label-studio PATH")
    print(f"machine: {os.cpu_count()} cores, load average {os.getloadavg()[0]:.1f}; file {args.input} "
          f"({args.input.stat().st_size / 1e6:.1f} MB)")
    # coigp-web first: a child process inherits its parent's peak RSS on Linux, and this process holds the
    # whole task file while it uploads it to Label Studio.
    print("coigp-web import and its follow-up jobs (bench/ingest.py):", flush=True)
    run = subprocess.run([sys.executable, str(ROOT / "bench" / "ingest.py"), "--input", str(args.input), "--no-progress"],
                         check=True, capture_output=True, text=True)
    print(run.stdout, end="", flush=True)
    ours = float(re.search(r"^end to end: ([0-9.]+) s", run.stdout, re.M).group(1))
    with tempfile.TemporaryDirectory(prefix="bench-ls-") as tmp:
        workdir = Path(tmp)
        tasks_path = workdir / "tasks.json"
        expected = label_studio_tasks(args.input, tasks_path)
        label_studio = run_label_studio(args.label_studio, tasks_path, expected, args.port, workdir)
    print(f"side by side: Label Studio import {label_studio:.1f} s; coigp-web import + near-duplicates + search "
          f"filters {ours:.1f} s, {label_studio / ours:.2f}× Label Studio's speed (load average {os.getloadavg()[0]:.1f})")


if __name__ == "__main__":
    main()
