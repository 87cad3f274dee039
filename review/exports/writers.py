"""Writers: one per file kind, each streaming ExportPairs into one data file with bounded memory.
A writer is made with (path, ExportFormat, Selection); `write(pair)` may raise Unrepresentable, which
the job counts as a skipped pair."""

import orjson

from annotation.csv_cells import CsvCells

from .meta import META_COLUMNS

# Parquet row groups of 5,000 rows (one batch; about 7 MB of text in the benchmark) keep the writer's
# buffer bounded: measured at 100k pairs, 10,000 rows took the process from 268 to 276 MB peak RSS.
PARQUET_ROW_GROUP = 5_000
CSV_COLUMNS = ["domain", "system", "history", "prompt", "chosen", "rejected"]


class Writer:
    def write(self, p):
        raise NotImplementedError

    def close(self):
        raise NotImplementedError

    def counts(self):
        """What this file adds to the manifest's counts (summed over the split files)."""
        return {}


class JsonlWriter(Writer):
    """One JSON object a line: the format's record builder (records.py), then the metadata columns."""

    def __init__(self, path, fmt, sel):
        self.file = open(path, "wb", buffering=1 << 20)
        self.build = fmt.record
        self.system_unread = fmt.system_unread
        self.unread_system_prompts = 0

    def write(self, p):
        record = self.build(p)
        if p.meta:
            record.update(p.meta)
        self.file.write(orjson.dumps(record) + b"\n")
        if self.system_unread and record["system"]:
            self.unread_system_prompts += 1

    def close(self):
        self.file.close()

    def counts(self):
        return {"unread_system_prompts": self.unread_system_prompts} if self.system_unread else {}


class CsvWriter(Writer):
    """UTF-8 CSV; with `bom`, a byte-order mark first so Excel in a Chinese locale reads UTF-8. Cells a
    spreadsheet would run as formulas are neutralised unless `raw_csv` (annotation/csv_cells.py)."""

    def __init__(self, path, fmt, sel):
        self.file = open(path, "w", encoding="utf-8-sig" if sel.bom else "utf-8", newline="", buffering=1 << 20)
        self.writer = CsvCells(self.file, raw=sel.raw_csv)
        self.with_meta = sel.with_meta
        self.writer.writerow(CSV_COLUMNS + (META_COLUMNS if sel.with_meta else []))

    def write(self, p):
        history = [{"role": m["role"], "content": m["content"]} for m in p.turns()[:-1]]
        row = [p.domain, p.system(), orjson.dumps(history).decode() if history else "", p.turns()[-1]["content"],
               p.chosen, p.rejected]
        if self.with_meta:
            row += [_csv_cell(p.meta[c]) for c in META_COLUMNS]
        self.writer.writerow(row)

    def close(self):
        self.file.close()

    def counts(self):
        return {"neutralised_cells": self.writer.neutralised}


def _csv_cell(value):
    if value is None:
        return ""
    if isinstance(value, (dict, list)):
        return orjson.dumps(value).decode()
    return value


class ParquetWriter(Writer):
    """TRL conversational columns (prompt, chosen, rejected as {role, content} lists), domain, and
    the metadata columns; written in row groups so memory stays bounded. Columns are built as flat
    Arrow arrays (offsets, roles, contents), not from a dict per row, which is several times faster."""

    def __init__(self, path, fmt, sel):
        import pyarrow as pa
        import pyarrow.parquet as pq

        self.pa = pa
        self.message = pa.struct([("role", pa.string()), ("content", pa.string())])
        self.scores = pa.struct([("judge", pa.string()), ("score", pa.float64())])
        fields = [("prompt", pa.list_(self.message)), ("chosen", pa.list_(self.message)),
                  ("rejected", pa.list_(self.message)), ("domain", pa.string())]
        if sel.with_meta:
            fields += [("pair_id", pa.int64()), ("status", pa.string()), ("chosen_model", pa.string()),
                       ("rejected_model", pa.string()), ("chosen_scores", pa.list_(self.scores)),
                       ("rejected_scores", pa.list_(self.scores)), ("panel_gap", pa.float64()),
                       ("reward_margin", pa.float64()), ("review_verdicts", pa.list_(pa.string())),
                       ("review_notes", pa.list_(pa.string())), ("swapped", pa.bool_())]
        self.schema = pa.schema(fields)
        self.writer = pq.ParquetWriter(path, self.schema, compression="zstd")
        self.with_meta = sel.with_meta
        self.pairs = []

    def write(self, p):
        self.pairs.append(p)
        if len(self.pairs) >= PARQUET_ROW_GROUP:
            self.flush()

    def _messages(self, lists):
        pa = self.pa
        offsets, roles, contents = [0], [], []
        for messages in lists:
            for m in messages:
                roles.append(m["role"])
                contents.append(m["content"])
            offsets.append(len(roles))
        values = pa.StructArray.from_arrays([pa.array(roles, pa.string()), pa.array(contents, pa.string())],
                                            fields=list(self.message))
        return pa.ListArray.from_arrays(pa.array(offsets, pa.int32()), values)

    def _answers(self, texts):
        pa = self.pa
        values = pa.StructArray.from_arrays(
            [pa.array(["assistant"] * len(texts), pa.string()), pa.array(texts, pa.string())], fields=list(self.message)
        )
        return pa.ListArray.from_arrays(pa.array(range(len(texts) + 1), pa.int32()), values)

    def flush(self):
        if not self.pairs:
            return
        pa, pairs = self.pa, self.pairs
        columns = [self._messages(p.messages for p in pairs), self._answers([p.chosen for p in pairs]),
                   self._answers([p.rejected for p in pairs]), pa.array([p.domain for p in pairs], pa.string())]
        if self.with_meta:
            meta = [p.meta for p in pairs]
            for name in META_COLUMNS:
                field_type = self.schema.field(name).type
                columns.append(pa.array([m[name] for m in meta], field_type))
        self.writer.write_batch(pa.RecordBatch.from_arrays(columns, schema=self.schema))
        self.pairs = []

    def close(self):
        self.flush()
        self.writer.close()
