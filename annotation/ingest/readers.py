"""Containers: stream records out of a file without holding it in memory.

A reader yields `Item(line, record, error)` in file order and knows how far it has read, so an
import can commit its position and resume there. Compression is detected from the file's first
bytes (gzip, zstd), the text encoding from its first 64 KiB (UTF-8 with or without BOM, else
GB18030, a superset of GBK and GB2312).

A hostile file cannot make a reader hold more than its `Limits`: a line (a CSV record, a JSON array
element) over the line limit is one rejected row, skipped in bounded chunks; compressed content
that is cut off, damaged or past the decompression limits ends the reading there, after every
complete line before it, and the reader's `problem` says what was wrong.
"""

import codecs
import gzip
import io
import json
import os
import re
import zlib
from dataclasses import dataclass

import orjson
import zstandard

GZIP_MAGIC = b"\x1f\x8b"
ZSTD_MAGIC = b"\x28\xb5\x2f\xfd"
PARQUET_MAGIC = b"PAR1"
CONTAINERS = ("jsonl", "json", "csv", "parquet")
# A compressed file smaller than this may still expand to the ratio limit times this: the ratio of
# a few kilobytes says little, and a hundred megabytes is harmless.
RATIO_FROM_BYTES = 1 << 20
# Over-long lines are skipped in chunks of this size.
SKIP_CHUNK = 1 << 20


class FileError(Exception):
    """The file as a whole cannot be read; the message says why."""


@dataclass
class Item:
    line: int
    record: object = None
    error: str = ""


@dataclass(frozen=True)
class Limits:
    """What one file may make a reader hold or decompress."""

    line_bytes: int
    decompressed_bytes: int
    decompression_ratio: int

    @classmethod
    def from_settings(cls):
        from django.conf import settings

        return cls(settings.IMPORT_MAX_LINE_BYTES, settings.IMPORT_MAX_DECOMPRESSED_BYTES,
                   settings.IMPORT_MAX_DECOMPRESSION_RATIO)

    def content_limit(self, compressed_size):
        """(bytes a compressed file of this size may expand to, the reason given when it does)."""
        by_ratio = self.decompression_ratio * max(compressed_size, RATIO_FROM_BYTES)
        if self.decompressed_bytes <= by_ratio:
            return self.decompressed_bytes, (
                f"its content is larger than {self.decompressed_bytes:,} bytes, the limit for a decompressed file "
                "(IMPORT_MAX_DECOMPRESSED_BYTES); reading stopped there")
        return by_ratio, (
            f"its content is more than {self.decompression_ratio} times the file's size ({by_ratio:,} bytes; "
            "IMPORT_MAX_DECOMPRESSION_RATIO), as in a decompression bomb; reading stopped there")

    def too_long(self, what, unit):
        return f"{what} longer than {self.line_bytes:,} {unit} (IMPORT_MAX_LINE_BYTES)"


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

    def close(self):
        self.raw.close()
        super().close()


class Decompressed(io.RawIOBase):
    """The content of a gzip or zstd file behind a guard: where the compressed data is cut off or
    damaged, or the content passes the limits, the stream ends as if the file ended there and
    `problem` says why, so the lines before that point are still read and imported."""

    def __init__(self, path, kind, source, limits):
        self.path = path
        self.kind = kind
        self.source = source
        self.stream = gzip.GzipFile(fileobj=source) if kind == "gzip" else (
            zstandard.ZstdDecompressor().stream_reader(source, read_across_frames=True))
        self.size = os.path.getsize(path)
        self.limit, self.limit_reason = limits.content_limit(self.size)
        self.produced = 0
        self.problem = ""
        self.ended = False

    def readable(self):
        return True

    def readinto(self, buffer):
        if self.problem:
            return 0
        room = self.limit - self.produced
        # Past the limit, reading one more byte tells a file that ends exactly there from a bigger one.
        view = memoryview(buffer)[:max(room, 1)]
        try:
            # One read of the decompressor at most: where it raises, the content it returned before is kept.
            n = self.stream.readinto1(view)
        except EOFError:
            return self._stop(f"the file is truncated: its gzip data stops at byte {self.size:,}, "
                              "before the end of the stream")
        except (zlib.error, gzip.BadGzipFile, zstandard.ZstdError) as exc:
            return self._stop(f"the file is corrupt: its {self.kind} data cannot be decompressed past byte "
                              f"{self.produced:,} of the content ({exc})")
        if n and room <= 0:
            return self._stop(self.limit_reason)
        if not n and self.kind == "zstd" and not self.ended:
            self.ended = True  # readers may ask again at the end; the frames are walked once
            if not zstd_frames_complete(self.path):
                return self._stop(f"the file is truncated: its zstd data stops at byte {self.size:,}, inside a frame")
        self.produced += n
        return n

    def _stop(self, problem):
        self.problem = problem
        return 0

    def close(self):
        self.stream.close()
        self.source.close()  # GzipFile leaves the file it was given open
        super().close()


def zstd_frames_complete(path):
    """Whether the file's zstd frames end exactly where the file does. zstd's stream reader ends
    quietly where a truncated file ends, so the frames are walked by their block headers (3 bytes
    per block of up to 128 KiB) once the content has been read."""
    with open(path, "rb") as f:
        size = os.fstat(f.fileno()).st_size
        position = 0
        while position < size:
            f.seek(position)
            head = f.read(18)
            if head[:4] != ZSTD_MAGIC:
                if int.from_bytes(head[:4], "little") & 0xFFFFFFF0 != 0x184D2A50 or len(head) < 8:
                    return False
                position += 8 + int.from_bytes(head[4:8], "little")  # a skippable frame
                continue
            try:
                position += zstandard.frame_header_size(head)
            except zstandard.ZstdError:
                return False
            has_checksum, last = head[4] & 0x04, False
            while not last:
                f.seek(position)
                block = f.read(3)
                if len(block) < 3:
                    return False
                header = int.from_bytes(block, "little")
                last, kind, length = header & 1, (header >> 1) & 3, header >> 3
                position += 3 + (1 if kind == 1 else length)  # an RLE block stores its byte once
            position += 4 if has_checksum else 0
        return position == size


@dataclass
class Opened:
    """A file opened for reading: its content, the raw bytes read so far (for progress), and the
    guard of a compressed file (None for a plain one)."""

    stream: io.BufferedIOBase
    counter: CountingReader
    guard: Decompressed = None

    @property
    def problem(self):
        return self.guard.problem if self.guard else ""


def open_decompressed(path, limits):
    raw = open(path, "rb")
    head = raw.read(4)
    raw.seek(0)
    counter = CountingReader(raw)
    buffered = io.BufferedReader(counter, buffer_size=1 << 20)
    kind = "gzip" if head.startswith(GZIP_MAGIC) else "zstd" if head.startswith(ZSTD_MAGIC) else ""
    if not kind:
        return Opened(buffered, counter)
    guard = Decompressed(path, kind, buffered, limits)
    return Opened(io.BufferedReader(guard, buffer_size=1 << 20), counter, guard)


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


def sniff_container(path, limits=None):
    with open(path, "rb") as f:
        if f.read(4) == PARQUET_MAGIC:
            return "parquet"
    opened = open_decompressed(path, limits or Limits.from_settings())
    with opened.stream:
        sample = opened.stream.read(65536)
    detect_encoding(sample)
    text = sample.lstrip(codecs.BOM_UTF8).lstrip()
    if text.startswith(b"["):
        return "json"
    if text.startswith(b"{"):
        return "jsonl"
    if path.lower().removesuffix(".gz").removesuffix(".zst").endswith(".csv"):
        return "csv"
    if opened.problem:  # damaged before its first records
        raise FileError(opened.problem)
    raise FileError(
        "cannot tell the container: the file starts with neither '{' (JSONL) nor '[' (JSON array), and its "
        "name does not end in .csv (choose the csv format for a CSV file)"
    )


class JsonlReader:
    """One JSON object per line. The position is the decompressed byte offset of the next line."""

    def __init__(self, path, start_line=0, start_offset=0, limits=None):
        self.path = path
        self.limits = limits or Limits.from_settings()
        opened = open_decompressed(path, self.limits)
        with opened.stream:
            self.encoding = detect_encoding(opened.stream.read(65536))
        self.opened = open_decompressed(path, self.limits)
        self.stream = self.opened.stream
        self.line = start_line
        self.offset = 0
        if start_offset:
            self._skip(start_offset)
        elif self.encoding == "utf-8-sig":
            self.offset = len(self.stream.read(3))

    def _skip(self, offset):
        if self.opened.guard is None:
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
        return self.opened.counter.consumed

    def total_bytes(self):
        return os.path.getsize(self.path)

    @property
    def problem(self):
        return self.opened.problem

    def __iter__(self):
        limit = self.limits.line_bytes
        while True:
            raw = self.stream.readline(limit + 1)
            if not raw:
                return
            self.line += 1
            self.offset += len(raw)
            if not raw.endswith(b"\n"):
                if len(raw) > limit:
                    self.offset += self._skip_rest_of_line()
                    yield Item(self.line, error=self.limits.too_long("line", "bytes"))
                    continue
                if self.problem:  # the content stopped inside this line
                    if raw.strip():
                        yield Item(self.line, error=f"the line is cut off: {self.problem}")
                    return
            stripped = raw.strip()
            if not stripped:
                continue
            yield self._parse(stripped)

    def _skip_rest_of_line(self):
        """Read past the rest of an over-long line a chunk at a time; returns the bytes skipped."""
        skipped = 0
        while True:
            chunk = self.stream.readline(SKIP_CHUNK)
            skipped += len(chunk)
            if not chunk or chunk.endswith(b"\n"):
                return skipped

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


def open_text(path, limits):
    """(text stream, Opened, encoding) for a compressed or plain text file.

    Undecodable bytes become lone surrogates (surrogateescape) instead of stopping the read, so
    the one record holding them is rejected and the rest of the file still imports."""
    opened = open_decompressed(path, limits)
    with opened.stream:
        encoding = detect_encoding(opened.stream.read(65536))
    opened = open_decompressed(path, limits)
    text = io.TextIOWrapper(opened.stream, encoding=encoding, errors="surrogateescape", newline="")
    return text, opened, encoding


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
    brackets), so a malformed element is one rejected row and the next element still imports. An
    element longer than the line limit (in characters) is scanned to its end without being kept,
    and rejected. The position is the number of elements read; a resumed import re-reads and skips
    them (a compressed stream cannot seek, and elements have no byte index without a full scan)."""

    CHUNK = 1 << 20
    _STRUCTURE = re.compile(r'["\[\]{},]')
    _STRING_BODY = re.compile(r'[^"\\]*(?:\\.[^"\\]*)*', re.S)
    _SPACE = re.compile(r"\s*")

    def __init__(self, path, start_row=0, limits=None):
        self.path = path
        self.limits = limits or Limits.from_settings()
        self.text, self.opened, self.encoding = open_text(path, self.limits)
        self.start_row = start_row
        self.row = 0
        self.buf = ""
        self.pos = 0
        self.eof = False
        self.decoder = json.JSONDecoder()

    def position(self):
        return {"row": self.row}

    def raw_bytes_read(self):
        return self.opened.counter.consumed

    def total_bytes(self):
        return os.path.getsize(self.path)

    @property
    def problem(self):
        return self.opened.problem

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
        """The next non-space character (reading more as needed), or None at the end of the file.
        A run of spaces longer than a chunk is cut to one space, so it is never held whole."""
        begin = self.pos
        while True:
            self.pos = self._SPACE.match(self.buf, self.pos).end()
            if self.pos < len(self.buf):
                return self.buf[self.pos]
            if self.pos - begin > self.CHUNK:
                self.buf = self.buf[:begin + 1]
                self.pos = len(self.buf)
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
        if end - start > self.limits.line_bytes:  # it fitted in the buffer, but is over the limit all the same
            item = Item(self.row, error=self.limits.too_long("element", "characters"))
        else:
            problem = undecodable(self.buf[start:end], self.encoding)
            item = Item(self.row, error=problem) if problem else Item(self.row, record)
        self.pos = end
        char = self._skip_space()
        if char not in (",", "]"):  # text after the value, or a number cut by the buffer's end
            return self._scan_element(start)
        self.pos += 1
        return item, char

    def _scan_element(self, start):
        """Find the element's end with a bracket stack, reading on as needed, and parse it. Past the
        line limit the text scanned so far is dropped (the stack and whether a string is open are
        all the scan needs) and the element is rejected at its end."""
        stack, i, in_string, too_long = [], start, False, False
        while True:
            found = None
            if in_string:
                i = self._STRING_BODY.match(self.buf, i).end()  # stops at the closing quote, or the text's end
                if i < len(self.buf) and self.buf[i] == '"':
                    in_string, i = False, i + 1
                    continue
            else:
                found = self._STRUCTURE.search(self.buf, i)
                if found is not None and found.group() == '"':
                    in_string, i = True, found.end()
                    continue
                if found is None:
                    i = len(self.buf)
            if found is None:
                too_long = too_long or len(self.buf) - start > self.limits.line_bytes
                if too_long:
                    self.buf, i, start = self.buf[i:], 0, 0
                if not self._more():
                    self.pos = len(self.buf)
                    reason = ("the file ends inside this element: the JSON array is truncated"
                              if too_long or self.buf[start:].strip() else
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
                    return self._end(start, found.start(), "]", too_long)
            elif not stack:
                return self._end(start, found.start(), ",", too_long)

    def _end(self, start, end, terminator, too_long):
        if too_long:
            self.pos = end + 1
            return Item(self.row, error=self.limits.too_long("element", "characters")), terminator
        return self._cut(start, end, terminator)

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
