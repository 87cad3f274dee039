"""Export benchmark: N pairs to JSONL (sharegpt) and to Parquet, in a separate process each, with
rows/s, elapsed time and the exporting process's peak RSS.

    .venv/bin/python bench/export.py [--pairs 1000000] [--formats sharegpt,parquet] [--with-meta] [--load] [--keep]

`--load` then reads each export back with Hugging Face `datasets.load_dataset` at its default 10 MB
inference block, in a separate process (rows, elapsed, peak RSS): the data files by type inference
(every pairs* file in one data_files list), or, with `--with-meta`, the export folder through the card's features.

The pairs are made by this script in SQL (generate_series), not through the importer, so building
1M pairs takes about a minute; a dataset of the same size made earlier is reused. Texts are Chinese,
about 40 characters of query, 220 of chosen and 110 of rejected response; one prompt in five has a
system prompt and one in ten a history turn; four pairs per prompt, six domains.
"""

import argparse
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
os.environ.setdefault("DJANGO_SETTINGS_MODULE", "coigp_web.settings")

import django  # noqa: E402

django.setup()

from django.db import connection, transaction  # noqa: E402

from annotation.models import Dataset, Pair  # noqa: E402
from review.models import Export  # noqa: E402

# Run in its own process: load the export in argv[1] (a folder) as argv[2] says, print the rows.
LOAD = """
import glob, os, sys
import datasets
datasets.disable_progress_bars()
folder, how, cache = sys.argv[1:4]
if how == "card":
    ds = datasets.load_dataset(folder, cache_dir=cache)
    print(sum(len(s) for s in ds.values()))
else:
    files = sorted(glob.glob(os.path.join(folder, "pairs*")))
    kwargs = {"keep_default_na": False} if how == "csv" else {}
    print(len(datasets.load_dataset(how, data_files=files, split="train", cache_dir=cache, **kwargs)))
"""

DOMAINS = ["chat", "code", "math", "logic", "novel", "role"]

GENERATE = """
INSERT INTO annotation_prompt (dataset_id, domain, messages, query, content_hash, source, meta, created_at)
SELECT %(dataset)s, (ARRAY['chat','code','math','logic','novel','role'])[1 + i %% 6],
       CASE WHEN i %% 5 = 0 THEN jsonb_build_array(jsonb_build_object('role', 'system', 'content', '你是一位乐于助人的中文助手，回答要准确、简洁。'))
            ELSE '[]'::jsonb END
       || CASE WHEN i %% 10 = 1 THEN jsonb_build_array(
            jsonb_build_object('role', 'user', 'content', '先问一个小问题：' || i),
            jsonb_build_object('role', 'assistant', 'content', '好的，这是对小问题的回答。'))
            ELSE '[]'::jsonb END
       || jsonb_build_array(jsonb_build_object('role', 'user', 'content', '第' || i || '个问题：' || repeat('请详细解释这个概念。', 4))),
       '第' || i || '个问题：' || repeat('请详细解释这个概念。', 4),
       md5('prompt' || i)::uuid, 'bench', '{}'::jsonb, now()
FROM generate_series(1, %(prompts)s) AS i;

INSERT INTO annotation_response (dataset_id, prompt_id, model, text, content_hash, created_at)
SELECT %(dataset)s, p.id, (ARRAY['qwen2-72b','glm-4','gpt-4o'])[1 + k %% 3],
       CASE WHEN k = 0 THEN '第' || k || '个回答（' || p.id || '）：' || repeat('这是一个详细、准确、有条理的解释，包含例子。', 10)
            ELSE '第' || k || '个回答（' || p.id || '）：' || repeat('这个回答比较简略。', 12) END,
       md5('response' || p.id || ':' || k)::uuid, now()
FROM annotation_prompt p CROSS JOIN generate_series(0, 4) AS k
WHERE p.dataset_id = %(dataset)s;

INSERT INTO annotation_pair (dataset_id, prompt_id, domain, chosen_id, rejected_id, origin, chosen_score,
                             rejected_score, status, status_reason, created_at)
SELECT %(dataset)s, c.prompt_id, p.domain, c.id, r.id, 'imported', 8.5, 4.0, 'pending', '', now()
FROM annotation_response c
JOIN annotation_prompt p ON p.id = c.prompt_id
JOIN annotation_response r ON r.prompt_id = c.prompt_id AND r.id <> c.id
WHERE c.dataset_id = %(dataset)s AND c.text LIKE '第0个回答%%';
"""


def ensure_dataset(pairs):
    name = f"bench-export-{pairs}"
    dataset, _ = Dataset.objects.get_or_create(name=name)
    have = Pair.objects.filter(dataset=dataset).count()
    if have == pairs:
        print(f"reusing {name}: {have:,} pairs")
        return dataset
    if have:
        raise SystemExit(f"{name} holds {have:,} pairs, not {pairs:,}; delete it first")
    assert pairs % 4 == 0, "four pairs per prompt"
    started = time.monotonic()
    with transaction.atomic(), connection.cursor() as cursor:
        cursor.execute(GENERATE, {"dataset": dataset.pk, "prompts": pairs // 4})
    with connection.cursor() as cursor:
        cursor.execute("ANALYZE annotation_prompt; ANALYZE annotation_response; ANALYZE annotation_pair")
    print(f"generated {name}: {Pair.objects.filter(dataset=dataset).count():,} pairs "
          f"in {time.monotonic() - started:.1f} s")
    return dataset


def run_export(dataset, fmt, out_dir, with_meta):
    ext = ".parquet" if fmt == "parquet" else (".csv" if fmt == "csv" else ".jsonl")
    out = Path(out_dir) / fmt / f"pairs{ext}"
    out.parent.mkdir(parents=True, exist_ok=True)
    command = [sys.executable, str(ROOT / "manage.py"), "export_pairs", "--dataset", dataset.name, "--format", fmt,
               "--out", str(out), "--no-progress", "--overwrite"] + (["--with-meta"] if with_meta else [])
    started = time.monotonic()
    process = subprocess.Popen(command, cwd=ROOT, stdout=subprocess.DEVNULL)
    # wait4 gives this child's own peak RSS (KiB on Linux).
    _pid, status, usage = os.wait4(process.pid, 0)
    elapsed = time.monotonic() - started
    # Exit status 2: finished with problems (trl and alpaca skip the pairs with earlier turns).
    if os.waitstatus_to_exitcode(status) not in (0, 2):
        raise SystemExit(f"export_pairs failed for {fmt} (status {status})")
    peak_kib = usage.ru_maxrss
    size = sum(f.stat().st_size for f in out.parent.iterdir() if f.name.startswith("pairs"))
    rows = sum(f["rows"] for f in Export.objects.latest("pk").files if f["kind"] == "data")
    cpu = usage.ru_utime + usage.ru_stime
    print(f"{fmt:9s} {rows:>10,} rows  {elapsed:7.1f} s  {rows / elapsed:>9,.0f} rows/s  "
          f"(exporter CPU {cpu:.1f} s)  peak RSS {peak_kib / 1024:6.0f} MiB  files {size / 1e6:,.0f} MB")
    return elapsed, peak_kib


def run_load(out_dir, fmt, with_meta):
    folder = Path(out_dir) / fmt
    how = "card" if with_meta and fmt != "parquet" else {"csv": "csv", "parquet": "parquet"}.get(fmt, "json")
    started = time.monotonic()
    process = subprocess.Popen([sys.executable, "-c", LOAD, str(folder), how, str(Path(out_dir) / "cache" / fmt)],
                               stdout=subprocess.PIPE, text=True)
    rows = process.stdout.read().strip()
    _pid, status, usage = os.wait4(process.pid, 0)
    elapsed = time.monotonic() - started
    if status != 0:
        raise SystemExit(f"load_dataset failed for {fmt} (status {status})")
    print(f"  load_dataset({how}) {int(rows):>10,} rows  {elapsed:7.1f} s  peak RSS {usage.ru_maxrss / 1024:6.0f} MiB")


def main():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--pairs", type=int, default=1_000_000)
    parser.add_argument("--formats", default="sharegpt,parquet")
    parser.add_argument("--with-meta", action="store_true")
    parser.add_argument("--load", action="store_true", help="read each export back with datasets.load_dataset")
    parser.add_argument("--keep", action="store_true", help="keep the exported files (printed directory)")
    args = parser.parse_args()
    dataset = ensure_dataset(args.pairs)
    out_dir = tempfile.mkdtemp(prefix="coigp-export-bench-")
    # Each export runs in its own process (manage.py export_pairs), so each peak RSS is its own.
    for fmt in args.formats.split(","):
        run_export(dataset, fmt, out_dir, args.with_meta)
        if args.load:
            run_load(out_dir, fmt, args.with_meta)
    if args.keep:
        print(f"files in {out_dir}")
    else:
        subprocess.run(["rm", "-rf", out_dir], check=True)


if __name__ == "__main__":
    main()
