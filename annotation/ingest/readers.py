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
import os
import re
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
    # Incremental, not final: a sample without newlines (a JSON array on one line) may end in
    # the middle of a character.
    try:
        codecs.getincrementaldecoder(encoding)().decode(data, final=False)
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
    raise FileError(
        "cannot tell the container: the file starts with neither '{' (JSONL) nor '[' (JSON array), and its "
        "name does not end in .csv (choose the csv format for a CSV file)"
    )


class JsonlReader:
    """One JSON object per line. The position is the decompressed byte offset of the next line."""

    def __init__(self, path, start_line=0, start_offset=0):
        self.path = path
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

    def total_bytes(self):
        return os.path.getsize(self.path)

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


def open_text(path):
    """(text stream, counter of raw bytes read, encoding) for a compressed or plain text file.

    Undecodable bytes become lone surrogates (surrogateescape) instead of stopping the read, so
    the one record holding them is rejected and the rest of the file still imports."""
    stream, _counter, _comp = open_decompressed(path)
    with stream:
        encoding = detect_encoding(stream.read(65536))
    binary, counter, _comp = open_decompressed(path)
    text = io.TextIOWrapper(binary, encoding=encoding, errors="surrogateescape", newline="")
    return text, counter, encoding


_SURROGATE = re.compile("[\udc80-\udcff]")


def undecodable(text, encoding):
    """The reason a decoded text holds bytes that were not valid in the file's encoding, else ''."""
    found = _SURROGATE.search(text)
    if found is None:
        return ""
    name = "GB18030 text" if encoding == "gb18030" else "UTF-8"
    return f"not valid {name} (byte 0x{ord(found.group()) - 0xDC00:02x} at column {found.start() + 1})"


class JsonArrayReader:
    """A JSON array, one record per element, streamed: each element is cut out of the decoded
    text and parsed on its own, so memory holds about one element, never the file.

    A well-formed element is parsed by the C scanner in one call; anything else goes through a
    bracket scanner that finds where the element ends (the next ',' or ']' outside strings and
    brackets), so a malformed element is one rejected row and the next element still imports.
    The position is the number of elements read; a resumed import re-reads and skips them
    (a compressed stream cannot seek, and elements have no byte index without a full scan)."""

    CHUNK = 1 << 20
    MAX_ELEMENT_CHARS = 64 << 20
    _STRUCTURE = re.compile(r'["\[\]{},]')
    _STRING_REST = re.compile(r'[^"\\]*(?:\\.[^"\\]*)*"', re.S)
    _SPACE = re.compile(r"\s*")

    def __init__(self, path, start_row=0):
        self.path = path
        self.text, self.counter, self.encoding = open_text(path)
        self.start_row = start_row
        self.row = 0
        self.buf = ""
        self.pos = 0
        self.eof = False
        self.decoder = json.JSONDecoder()

    def position(self):
        return {"row": self.row}

    def raw_bytes_read(self):
        return self.counter.consumed

    def total_bytes(self):
        return os.path.getsize(self.path)

    def close(self):
        self.text.close()

    def _more(self):
        chunk = "" if self.eof else self.text.read(self.CHUNK)
        if not chunk:
            self.eof = True
            return False
        self.buf += chunk
        return True

    def _skip_space(self):
        """The next non-space character (reading more as needed), or None at the end of the file."""
        while True:
            self.pos = self._SPACE.match(self.buf, self.pos).end()
            if self.pos < len(self.buf):
                return self.buf[self.pos]
            if not self._more():
                return None

    def __iter__(self):
        first = self._skip_space()
        if first == "\ufeff":
            self.pos += 1
            first = self._skip_space()
        if first != "[":
            raise FileError("a JSON array file must start with '['")
        self.pos += 1
        after_comma = False
        while True:
            if self.pos > self.CHUNK:  # indexes only move between elements
                self.buf, self.pos = self.buf[self.pos:], 0
            char = self._skip_space()
            if char == "]" and not after_comma:
                yield from self._trailing()
                return
            self.row += 1
            item, terminator = self._element()
            if self.row > self.start_row:
                yield item
            if terminator == "]":
                yield from self._trailing()
            if terminator != ",":
                return
            after_comma = True

    def _element(self):
        """(Item, ',' or ']', or None where the file ends) for the element at self.pos."""
        start = self.pos
        try:
            record, end = self.decoder.raw_decode(self.buf, start)
        except (json.JSONDecodeError, RecursionError):
            return self._scan_element(start)
        self.pos = end
        char = self._skip_space()
        if char not in (",", "]"):  # text after the value, or a number cut by the buffer's end
            return self._scan_element(start)
        problem = undecodable(self.buf[start:end], self.encoding)
        self.pos += 1
        return (Item(self.row, error=problem) if problem else Item(self.row, record)), char

    def _scan_element(self, start):
        """Find the element's end with a bracket stack, reading on as needed, and parse it."""
        stack, i = [], start
        while True:
            found = self._STRUCTURE.search(self.buf, i)
            if found is not None and found.group() == '"':
                rest = self._STRING_REST.match(self.buf, found.end())
                if rest is not None:
                    i = rest.end()
                    continue
                i, found = found.start(), None  # the string goes on in the next chunk
            if found is None:
                if len(self.buf) - start > self.MAX_ELEMENT_CHARS:
                    self.eof, self.pos = True, len(self.buf)
                    return Item(self.row, error=(
                        f"element is over {self.MAX_ELEMENT_CHARS >> 20} Mi characters long (unbalanced "
                        "brackets or quotes?); the rest of the file cannot be read")), None
                if not self._more():
                    self.pos = len(self.buf)
                    reason = ("the file ends inside this element: the JSON array is truncated"
                              if self.buf[start:].strip() else
                              "the file ends before the closing ']': the JSON array is truncated")
                    return Item(self.row, error=reason), None
                continue
            char, i = found.group(), found.end()
            if char in "[{":
                stack.append(char)
            elif char in "]}":
                opener = "[" if char == "]" else "{"
                if opener in stack:
                    # An unclosed bracket inside is closed here, so the damage stays in this element.
                    while stack.pop() != opener:
                        pass
                elif char == "]" and not stack:
                    return self._cut(start, found.start(), "]")
            elif not stack:
                return self._cut(start, found.start(), ",")

    def _cut(self, start, end, terminator):
        self.pos = end + 1
        text = self.buf[start:end].strip()
        if not text:
            return Item(self.row, error="empty element (two commas in a row, or a comma before ']')"), terminator
        problem = undecodable(text, self.encoding)
        if problem:
            return Item(self.row, error=problem), terminator
        try:
            return Item(self.row, orjson.loads(text)), terminator
        except orjson.JSONDecodeError:
            return Item(self.row, error=f"malformed JSON: {_json_reason(text)}"), terminator

    def _trailing(self):
        self.pos += 1
        if self._skip_space() is not None:
            yield Item(self.row + 1, error="unexpected text after the closing ']' of the JSON array")
