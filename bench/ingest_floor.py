"""The floor under the import (issue 17): what reading the file and a plain COPY of its rows cost alone.

    python bench/ingest_floor.py --input FILE [--limit LINES]

1. JSON parse: every line of FILE through orjson.loads, nothing else (wall and CPU seconds).
2. Rows: the prompts, responses and pairs the import would store (exact-text keys, ids given here)
   are written to tab-separated files under bench/out/ (not timed).
3. COPY: those files are COPYed into fresh tables made `LIKE annotation_prompt / _response / _pair
   INCLUDING ALL` (the same columns, defaults, unique and other indexes; no foreign keys), in one
   transaction, and the tables dropped. Wall seconds and the PostgreSQL backend's CPU seconds.

The import does more than this floor (validation, duplicate checks against stored rows, foreign-key
checks, job progress), so the ratio of the two says what that costs. Holds the file's keys in memory
(~150 bytes a response): a benchmark script, not a path the app takes.
"""

import argparse
import os
import resource
import sys
import time
from pathlib import Path

import orjson

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
os.environ.setdefault("DJANGO_SETTINGS_MODULE", "coigp_web.settings")

TABLES = ("prompt", "response", "pair")


def cpu_seconds():
    r = resource.getrusage(resource.RUSAGE_SELF)
    return r.ru_utime + r.ru_stime


def backend_cpu_seconds(pid):
    """utime + stime of a PostgreSQL backend on this machine (/proc), in seconds."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def lines(path, limit):
    with open(path, "rb") as f:
        for n, line in enumerate(f):
            if limit and n >= limit:
                return
            yield line


def tsv(value):
    return value.replace("\\", "\\\\").replace("\t", "\\t").replace("\n", "\\n").replace("\r", "\\r")


def write_rows(path, limit, out):
    from annotation.ingest.formats import RowError, messages_key, parse_record, text_key

    prompts, responses, pairs = {}, {}, set()
    files = {t: open(out / f"floor_{t}.tsv", "w", encoding="utf-8") for t in TABLES}
    for line in lines(path, limit):
        try:
            record = parse_record(orjson.loads(line), "sharegpt")
        except (RowError, orjson.JSONDecodeError):
            continue
        p_key = messages_key(record.messages)
        if p_key not in prompts:
            prompts[p_key] = len(prompts) + 1
            files["prompt"].write(f"{prompts[p_key]}\t1\t{record.domain}\t{tsv(orjson.dumps(record.messages).decode())}\t"
                                  f"{tsv(record.messages[-1]['content'])}\t{p_key}\tfile\t{{}}\t2026-01-01\n")
        ids = []
        for model, text in ((record.chosen_model, record.chosen), (record.rejected_model, record.rejected)):
            key = (p_key, text_key(text))
            if key not in responses:
                responses[key] = len(responses) + 1
                files["response"].write(f"{responses[key]}\t1\t{prompts[p_key]}\t{tsv(model)}\t{tsv(text)}\t{key[1]}\t"
                                        "2026-01-01\n")
            ids.append(responses[key])
        if (prompts[p_key], *ids) not in pairs:
            pairs.add((prompts[p_key], *ids))
            files["pair"].write(f"{len(pairs)}\t1\t{prompts[p_key]}\t{record.domain}\t{ids[0]}\t{ids[1]}\timported\t"
                                "pending\t\t2026-01-01\n")
    for f in files.values():
        f.close()
    return len(prompts), len(responses), len(pairs)


COLUMNS = {
    "prompt": "id, dataset_id, domain, messages, query, content_hash, source, meta, created_at",
    "response": "id, dataset_id, prompt_id, model, text, content_hash, created_at",
    "pair": "id, dataset_id, prompt_id, domain, chosen_id, rejected_id, origin, status, status_reason, created_at",
}


def copy_floor(out):
    from django.db import connection, transaction

    with connection.cursor() as cursor:
        cursor.execute("SELECT pg_backend_pid()")
        pid = cursor.fetchone()[0]
        started, cpu = time.perf_counter(), backend_cpu_seconds(pid)
        with transaction.atomic():
            for table in TABLES:
                cursor.execute(f"CREATE TABLE floor_{table} (LIKE annotation_{table} INCLUDING ALL)")
                with open(out / f"floor_{table}.tsv", "rb") as f, \
                        cursor.cursor.copy(f"COPY floor_{table} ({COLUMNS[table]}) FROM STDIN") as copy:
                    while block := f.read(1 << 20):
                        copy.write(block)
        wall, backend = time.perf_counter() - started, backend_cpu_seconds(pid) - cpu
        cursor.execute("DROP TABLE floor_prompt, floor_response, floor_pair")
    return wall, backend


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--input", type=Path, required=True)
    parser.add_argument("--limit", type=int, help="read only the first LIMIT lines")
    args = parser.parse_args()

    started, cpu = time.perf_counter(), cpu_seconds()
    n = sum(1 for line in lines(args.input, args.limit) if orjson.loads(line) is not None)
    print(f"JSON parse of {n:,} lines ({args.input.name}): {time.perf_counter() - started:.1f} s wall, "
          f"{cpu_seconds() - cpu:.1f} s CPU (load average {os.getloadavg()[0]:.1f})")

    import django

    django.setup()
    out = ROOT / "bench" / "out"
    out.mkdir(exist_ok=True)
    counts = write_rows(args.input, args.limit, out)
    print("rows: {:,} prompts, {:,} responses, {:,} pairs".format(*counts))
    wall, backend = copy_floor(out)
    print(f"plain COPY into tables LIKE annotation_* INCLUDING ALL: {wall:.1f} s wall, PostgreSQL backend "
          f"{backend:.1f} s CPU (load average {os.getloadavg()[0]:.1f})")
    for table in TABLES:
        (out / f"floor_{table}.tsv").unlink()


if __name__ == "__main__":
    main()
