"""Tables: CSV and Parquet files, whose columns the user maps onto our record fields.

A mapping `prompt=question,chosen=good` renames the user's columns `question` and `good` to our
fields; columns it does not name keep their own name (so a header that already uses our names needs
no mapping). A tabular row then becomes the same dict a JSON line would be: cells that hold JSON
(a messages list, a history, scores) are decoded where the field expects a list or an object, a
`history` column is folded into the prompt's messages, and `model`/`text` columns make a row one
scored response of its prompt (the `responses` format).
"""

import csv
import os

import orjson

from . import foreign_formats
from .formats import MAPPABLE_FIELDS, RowError
from .readers import SKIP_CHUNK, FileError, Item, Limits, open_text, undecodable

FIELDS = MAPPABLE_FIELDS
# Fields whose value is always a list or an object: a text cell there must be JSON.
STRUCTURED = {"history": list, "conversations": list, "responses": list, "output": list, "scores": dict,
              "completions": list}
# Fields that are text or messages: a cell that looks like a JSON list/object of messages is decoded.
MAYBE_MESSAGES = ("prompt", "chosen", "rejected")
OPTIONAL = ("system", "history", "domain", "model", "scores", "input")


def parse_columns(text):
    """{field: column} from 'field=column,field=column'; ValueError naming the bad part."""
    mapping = {}
    for part in (text or "").split(","):
        if not part.strip():
            continue
        field, sep, column = part.partition("=")
        field, column = field.strip(), column.strip()
        if not sep or not field or not column:
            raise ValueError(f"column mapping {part.strip()!r} is not FIELD=COLUMN")
        if field not in FIELDS:
            raise ValueError(f"unknown field {field!r} in the column mapping; expected one of {', '.join(FIELDS)}")
        if field in mapping:
            raise ValueError(f"field {field!r} is mapped twice in the column mapping")
        mapping[field] = column
    return mapping


def check_header(columns, mapping, source):
    missing = [f"{column!r} (for {field})" for field, column in mapping.items() if column not in columns]
    if missing:
        shown = ", ".join(repr(c) for c in list(columns)[:20])
        raise FileError(f"{source} has no column {', '.join(missing)}; its columns are {shown}")


def to_record(row, mapping):
    """The record dict for one table row (column -> cell), ready for detect_format/parse_record."""
    if foreign_formats.detect(row) == foreign_formats.ARGILLA:
        return _argilla_record(row, mapping)
    targets = set(mapping)
    record = {column: value for column, value in row.items() if column not in targets}
    for field, column in mapping.items():
        record.pop(column, None)
    for field, column in mapping.items():
        record[field] = row.get(column)
    if "query" in record and "prompt" not in record:
        record["prompt"] = record.pop("query")
    for field in OPTIONAL:
        if record.get(field) in ("", None):
            record.pop(field, None)
    for field, kind in STRUCTURED.items():
        if isinstance(record.get(field), str):
            record[field] = _json_cell(record[field], field, kind, mapping)
    for field in MAYBE_MESSAGES:
        value = record.get(field)
        if isinstance(value, str) and value.lstrip()[:1] in ("[", "{"):
            try:
                decoded = orjson.loads(value)
            except orjson.JSONDecodeError:
                continue  # text that merely starts with a bracket
            if _looks_like_messages(decoded):
                record[field] = decoded
    if "history" in record and "instruction" not in record:
        record["prompt"] = _history_messages(record.pop("history"), record.get("prompt"))
    if "text" in record and "responses" not in record:
        response = {"model": record.pop("model", "") or "", "text": record.pop("text")}
        if "scores" in record:
            response["scores"] = record.pop("scores")
        record["responses"] = [response]
    return record


def _argilla_record(row, mapping):
    """An Argilla record with the mapping applied to its fields, which keep their own names too: the
    annotators' ranking names the fields it ranks, so `chosen=response-1` picks nothing, the ranking
    does (a mapping cannot invert a preference)."""
    if isinstance(row.get("fields"), dict):
        fields = dict(row["fields"])
        for field, column in mapping.items():
            if column in fields:
                fields[field] = fields[column]
        return {**row, "fields": fields}
    record = dict(row)
    for field, column in mapping.items():
        if column in row:
            record[field] = row[column]
    return record


def name_column(reason, mapping):
    """Add the user's column name to a reason that names one of our fields."""
    for field, column in mapping.items():
        if field != column and f"'{field}" in reason:
            return f"{reason} (column {column!r})"
    return reason


def _json_cell(value, field, kind, mapping):
    try:
        decoded = orjson.loads(value)
    except orjson.JSONDecodeError as exc:
        raise RowError(f"field {field!r}{_column(field, mapping)} must hold a JSON {kind.__name__}: {exc}") from None
    if not isinstance(decoded, kind):
        raise RowError(
            f"field {field!r}{_column(field, mapping)} must hold a JSON {kind.__name__}, got {type(decoded).__name__}"
        )
    return decoded


def _column(field, mapping):
    column = mapping.get(field)
    return f" (column {column!r})" if column and column != field else ""


def _looks_like_messages(value):
    if isinstance(value, dict):
        return "value" in value or "content" in value
    return bool(value) and isinstance(value, list) and all(isinstance(m, dict) and "role" in m for m in value)


def _history_messages(history, prompt):
    if not isinstance(history, list):
        raise RowError(f"field 'history' must be a list, got {type(history).__name__}")
    if not isinstance(prompt, str):
        raise RowError("field 'prompt' must be a string when a history is given")
    messages = []
    for i, turn in enumerate(history):
        if isinstance(turn, list) and len(turn) == 2:
            messages += [{"role": "user", "content": turn[0]}, {"role": "assistant", "content": turn[1]}]
        elif isinstance(turn, dict) and "role" in turn:
            messages.append(turn)
        else:
            raise RowError(f"history[{i}] must be a [query, answer] pair or a {{role, content}} message")
    return messages + [{"role": "user", "content": prompt}]


class RecordTooLong(Exception):
    """A record over the line limit, read past without being kept."""


class CutOff(Exception):
    """The file's content stopped (truncated, corrupt, over a limit) inside a record."""


class RecordLines:
    """A CSV file's lines for the csv module, with a bound: a record longer than the line limit
    (in characters) is read on to its end without being kept, the end being the first line end
    where its quotes balance (RFC 4180), and RecordTooLong is raised in its place. Where the content
    stopped early inside a record, CutOff is raised instead of handing the csv module a partial
    record. Counts the file's lines, since a record's number is the line it starts on."""

    NEWLINES = ("\n", "\r")

    def __init__(self, text, opened, limit):
        self.text = text
        self.opened = opened
        self.limit = limit
        self.line = 0
        self.start_record()

    def start_record(self):
        self.record_chars = self.record_quotes = 0
        self.in_record = False

    def __iter__(self):
        return self

    def __next__(self):
        line = self.text.readline(self.limit + 1)
        if not line:
            if self.in_record and self.opened.problem:
                raise CutOff()
            raise StopIteration
        self.line += 1
        self.in_record = True
        self.record_chars += len(line)
        self.record_quotes += line.count('"')
        if self.record_chars > self.limit:
            self._skip_record(line)
            raise RecordTooLong()
        if self.opened.problem and not line.endswith(self.NEWLINES):
            raise CutOff()
        return line

    def _skip_record(self, line):
        while True:
            ended = line.endswith(self.NEWLINES)
            if ended and not self.record_quotes % 2:
                return
            line = self.text.readline(SKIP_CHUNK)
            if not line:
                return
            if ended:
                self.line += 1
            self.record_quotes += line.count('"')


class CsvReader:
    """A CSV file with a header line. Each record's number is the file line it starts on (the
    header is line 1; a quoted cell may span lines). The position is the number of records read;
    a resumed import re-reads and skips them."""

    def __init__(self, path, start_row=0, limits=None):
        self.path = path
        self.limits = limits or Limits.from_settings()
        self.text, self.opened, self.encoding = open_text(path, self.limits)
        # The record bound (RecordLines) is the field bound; the csv module's own must not be lower.
        csv.field_size_limit(max(csv.field_size_limit(), self.limits.line_bytes))
        self.lines = RecordLines(self.text, self.opened, self.limits.line_bytes)
        self.reader = csv.reader(self.lines)
        try:
            header = next(self.reader)
        except StopIteration:
            self.text.close()
            raise FileError(self.problem or "the CSV file is empty: it has no header line") from None
        except (csv.Error, RecordTooLong, CutOff) as exc:
            self.text.close()
            reason = (self.problem if isinstance(exc, CutOff) else
                      self.limits.too_long("header line", "characters") if isinstance(exc, RecordTooLong) else exc)
            raise FileError(f"the CSV header line cannot be read: {reason}") from None
        self.columns = [name.strip().lstrip("\ufeff") for name in header]
        problem = undecodable("".join(self.columns), self.encoding)
        duplicated = sorted({c for c in self.columns if self.columns.count(c) > 1})
        if problem or duplicated or not any(self.columns):
            self.text.close()
            raise FileError(f"the CSV header line has {problem or 'no column names'}" if not duplicated
                            else f"the CSV header names {', '.join(map(repr, duplicated))} more than once")
        self.start_row = start_row
        self.rows = 0
        self.line = self.lines.line

    def position(self):
        return {"row": self.rows, "line": self.line}

    def raw_bytes_read(self):
        return self.opened.counter.consumed

    def total_bytes(self):
        return os.path.getsize(self.path)

    @property
    def problem(self):
        return self.opened.problem

    def close(self):
        self.text.close()

    def __iter__(self):
        while True:
            start = self.line + 1
            self.lines.start_record()
            error = ""
            try:
                cells = next(self.reader)
            except StopIteration:
                return
            except csv.Error as exc:
                cells, error = None, f"malformed CSV: {exc}"
            except RecordTooLong:
                cells, error = None, self.limits.too_long("record", "characters")
            except CutOff:
                yield Item(start, error=f"the record is cut off: {self.problem}")
                return
            self.line = self.lines.line
            if cells is not None and not any(cell.strip() for cell in cells):
                continue
            self.rows += 1
            if self.rows <= self.start_row:
                continue
            if cells is not None:
                error = self._problem(cells)
            yield Item(start, error=error) if error else Item(start, dict(zip(self.columns, cells)))

    def _problem(self, cells):
        if len(cells) != len(self.columns):
            return f"the record has {len(cells)} cells; the header has {len(self.columns)} columns"
        for column, cell in zip(self.columns, cells):
            problem = undecodable(cell, self.encoding)
            if problem:
                return f"column {column!r}: {problem}"
        return ""


class ParquetReader:
    """Parquet files read batch by batch (pyarrow `iter_batches`), so memory holds one batch.
    Struct and list columns arrive as dicts and lists. Rows are numbered from 1 across all the
    files given; the position is the number of rows read, and a resumed import skips whole row
    groups before it. `limit` stops after that many rows."""

    BATCH_ROWS = 1024
    problem = ""  # pyarrow reads whole pages and raises for a damaged file

    def __init__(self, paths, start_row=0, limit=None):
        import pyarrow.parquet as pq

        self.paths = [paths] if isinstance(paths, (str, os.PathLike)) else list(paths)
        self.files = []
        for path in self.paths:
            try:
                self.files.append(pq.ParquetFile(path))
            except Exception as exc:  # pyarrow raises ArrowInvalid, OSError, … for a damaged file
                self.close()
                raise FileError(f"{os.path.basename(str(path))} is not a readable Parquet file: {exc}") from None
        self.columns = self.files[0].schema_arrow.names if self.files else []
        self.available = sum(f.metadata.num_rows for f in self.files)
        self.total_rows = min(self.available, limit) if limit else self.available
        self.start_row = start_row
        self.row = 0

    def position(self):
        return {"row": self.row}

    def total_bytes(self):
        size = sum(os.path.getsize(p) for p in self.paths)
        return size * self.total_rows // self.available if self.available else size

    def raw_bytes_read(self):
        if not self.total_rows:
            return 0
        return self.total_bytes() * self.row // self.total_rows

    def close(self):
        for f in self.files:
            f.close()

    def __iter__(self):
        for parquet in self.files:
            groups = []
            for index in range(parquet.metadata.num_row_groups):
                rows = parquet.metadata.row_group(index).num_rows
                if self.row + rows <= self.start_row and not groups:
                    self.row += rows  # resuming: this whole row group was imported already
                else:
                    groups.append(index)
            if not groups:
                continue
            for batch in parquet.iter_batches(batch_size=self.BATCH_ROWS, row_groups=groups):
                for record in batch.to_pylist():
                    if self.row >= self.total_rows:
                        return
                    self.row += 1
                    if self.row > self.start_row:
                        yield Item(self.row, record)
