"""Containers: stream records out of a file without holding it in memory.

A reader yields `Item(line, record, error)` in file order and knows how far it has read, so an
import can commit its position and resume there. Compression is detected from the file's first
bytes (gzip, zstd), the text encoding from its first 64 KiB (UTF-8 with or without BOM, else
GB18030, a superset of GBK and GB2312).
"""

import codecs
import gzip
import io
import json
from dataclasses import dataclass

import orjson

GZIP_MAGIC = b"\x1f\x8b"
ZSTD_MAGIC = b"\x28\xb5\x2f\xfd"
PARQUET_MAGIC = b"PAR1"
CONTAINERS = ("jsonl", "json", "csv", "parquet")


class FileError(Exception):
    """The file as a whole cannot be read; the message says why."""


@dataclass
class Item:
    line: int
    record: object = None
    error: str = ""


class CountingReader(io.RawIOBase):
    """Wraps the raw file to report how many compressed bytes were consumed (for progress)."""

    def __init__(self, raw):
        self.raw = raw
        self.consumed = 0

    def readable(self):
        return True

    def readinto(self, buffer):
        n = self.raw.readinto(buffer)
        self.consumed += n or 0
        return n

    def seekable(self):
        return self.raw.seekable()

    def seek(self, position, whence=io.SEEK_SET):
        self.consumed = self.raw.seek(position, whence)
        return self.consumed

    def tell(self):
        return self.raw.tell()


def open_decompressed(path):
    """(binary stream of the decompressed content, counter of raw bytes read, compression name)."""
    raw = open(path, "rb")
    head = raw.read(4)
    raw.seek(0)
    counter = CountingReader(raw)
    buffered = io.BufferedReader(counter, buffer_size=1 << 20)
    if head.startswith(GZIP_MAGIC):
        return gzip.GzipFile(fileobj=buffered), counter, "gzip"
    if head.startswith(ZSTD_MAGIC):
        import zstandard

        reader = zstandard.ZstdDecompressor().stream_reader(buffered, read_across_frames=True)
        return io.BufferedReader(reader, buffer_size=1 << 20), counter, "zstd"
    return buffered, counter, ""


def detect_encoding(sample):
    """'utf-8-sig', 'utf-8' or 'gb18030' for a sample of the file's first bytes, else FileError.

    A file counts as GB18030 only when none of its non-ASCII lines is valid UTF-8: Chinese GBK
    text practically never is, while a UTF-8 file with a few broken lines keeps its good lines
    (the broken ones are rejected one by one)."""
    if sample.startswith(codecs.BOM_UTF8):
        return "utf-8-sig"
    if sample.startswith((codecs.BOM_UTF16_LE, codecs.BOM_UTF16_BE)):
        raise FileError("the file is UTF-16 encoded; save it as UTF-8")
    lines = sample.split(b"\n")[:-1] or [sample]  # the last line may be cut by the sample's end
    non_ascii = [line for line in lines if not line.isascii()]
    utf8_lines = sum(1 for line in non_ascii if _decodes(line, "utf-8"))
    if utf8_lines or not non_ascii:
        return "utf-8"
    if all(_decodes(line, "gb18030") for line in non_ascii):
        return "gb18030"
    first = non_ascii[0]
    try:
        first.decode("utf-8")
    except UnicodeDecodeError as exc:
        byte = first[exc.start]
    raise FileError(f"the file is neither UTF-8 (invalid byte 0x{byte:02x} on its first lines) nor GB18030/GBK")


def _decodes(data, encoding):
    try:
        data.decode(encoding)
        return True
    except UnicodeDecodeError:
        return False


def sniff_container(path):
    with open(path, "rb") as f:
        if f.read(4) == PARQUET_MAGIC:
            return "parquet"
    stream, _counter, _comp = open_decompressed(path)
    with stream:
        sample = stream.read(65536)
    detect_encoding(sample)
    text = sample.lstrip(codecs.BOM_UTF8).lstrip()
    if text.startswith(b"["):
        return "json"
    if text.startswith(b"{"):
        return "jsonl"
    if path.lower().removesuffix(".gz").removesuffix(".zst").endswith(".csv"):
        return "csv"
    raise FileError("cannot tell the container: the file starts with neither '{' (JSONL) nor '[' (JSON array)")


class JsonlReader:
    """One JSON object per line. The position is the decompressed byte offset of the next line."""

    def __init__(self, path, start_line=0, start_offset=0):
        self.stream, self.counter, self.compression = open_decompressed(path)
        sample = self.stream.read(65536)
        self.encoding = detect_encoding(sample)
        self.stream.close()
        self.stream, self.counter, _ = open_decompressed(path)
        self.line = start_line
        self.offset = 0
        if start_offset:
            self._skip(start_offset)
        elif self.encoding == "utf-8-sig":
            self.offset = len(self.stream.read(3))

    def _skip(self, offset):
        if not self.compression:
            self.stream.seek(offset)
            self.offset = offset
            return
        while self.offset < offset:
            chunk = self.stream.read(min(1 << 20, offset - self.offset))
            if not chunk:
                break
            self.offset += len(chunk)

    def position(self):
        return {"line": self.line, "offset": self.offset}

    def raw_bytes_read(self):
        return self.counter.consumed

    def __iter__(self):
        for raw in self.stream:
            self.line += 1
            self.offset += len(raw)
            stripped = raw.strip()
            if not stripped:
                continue
            yield self._parse(stripped)

    def _parse(self, raw):
        if self.encoding == "gb18030":
            try:
                raw = raw.decode("gb18030").encode("utf-8")
            except UnicodeDecodeError as exc:
                return Item(self.line, error=f"not valid GB18030 text (byte 0x{raw[exc.start]:02x} at column {exc.start + 1})")
        try:
            return Item(self.line, orjson.loads(raw))
        except orjson.JSONDecodeError as exc:
            try:
                raw.decode("utf-8")
            except UnicodeDecodeError as uexc:
                return Item(
                    self.line,
                    error=f"not valid UTF-8 (byte 0x{raw[uexc.start]:02x} at column {uexc.start + 1})",
                )
            return Item(self.line, error=f"malformed JSON: {_json_reason(raw)}" if raw else str(exc))

    def close(self):
        self.stream.close()


def _json_reason(raw):
    try:
        json.loads(raw)
    except json.JSONDecodeError as exc:
        return f"{exc.msg} at column {exc.colno}"
    except (UnicodeDecodeError, RecursionError) as exc:
        return str(exc)
    return "invalid JSON"
