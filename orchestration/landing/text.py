"""Landing files as text: where each row starts (its line) and control characters made visible.

Line numbers are physical lines of the (decompressed) file, 1-based: the header of a CSV file is
line 1 and blank lines count. A CSV row whose quoted value spans several lines is on the line it
starts on, and the rows after it are on the lines they start on (a text editor's "go to line"
finds them). Line breaks are LF, CRLF and a lone CR, as the CSV reader (pyarrow) reads them.

Pure: no I/O, no database, no Dagster.
"""

from __future__ import annotations

import re
from collections import Counter
from dataclasses import dataclass

import numpy as np
import pyarrow as pa

#: A control character of a text value: C0 (U+0000 to U+001F) except tab, so CR and LF too.
CONTROL_CHARACTERS = "\x00-\x08\x0a-\x1f"
_CONTROL = re.compile(f"[{CONTROL_CHARACTERS}\x09\x7f]")
_NAMED = {"\t": "\\t", "\n": "\\n", "\r": "\\r"}

# One CSV record as the pyarrow reader splits it (comma delimiter, '"' quotes, doubled quotes as
# escapes): a quote opens a quoted value only at the start of a value; after the closing quote the
# value goes on unquoted (where a quote is an ordinary character); a quote that never closes runs
# to the end of the file but for a last line break. Possessive quantifiers where they can be: no
# backtracking on large files.
_VALUE = rb'(?:"(?:[^"]++|"")*+"[^,\r\n]*+|"(?:[^"]|"")*?(?=(?:\r\n|\n|\r)?\Z)|[^,\r\n]*+)'
_RECORD = re.compile(rb"(" + _VALUE + rb"(?:," + _VALUE + rb")*+)(?:\r\n|\n|\r|\Z)")
_VALUE_AND_DELIMITER = re.compile(_VALUE + rb"(?:,|\Z)")


def visible(text: str, limit: int | None = None) -> str:
    """``text`` with control characters escaped (``\\x00``, ``\\n``, ``\\t``, ``\\x7f``) and runs
    of one repeated control character shortened (``\\x00 x 64``); cut at ``limit`` characters of
    the result (with ``...``)."""

    def escape(char: str) -> str:
        return _NAMED.get(char) or f"\\x{ord(char):02x}"

    def run(match: re.Match) -> str:
        count = len(match.group(0))
        return escape(match.group(1)) * count if count < 4 else f"[{escape(match.group(1))} x {count}]"

    shown = re.sub(f"([{CONTROL_CHARACTERS}\x09\x7f])\\1*", run, text) if _CONTROL.search(text) else text
    if limit is not None and len(shown) > limit:
        shown = shown[:limit] + "..."
    return shown


def line_breaks(data: bytes) -> np.ndarray:
    """The offsets of the line breaks of ``data``, sorted: every LF, and every CR not before an LF
    (a CRLF counts once, at its LF)."""
    array = np.frombuffer(data, dtype=np.uint8)
    lf = np.flatnonzero(array == 10)
    if b"\r" not in data:
        return lf
    cr = np.flatnonzero(array == 13)
    after = cr + 1
    lone = cr[(after >= len(array)) | (array[np.minimum(after, len(array) - 1)] != 10)]
    return np.union1d(lf, lone) if len(lone) else lf


def line_of(breaks: np.ndarray, offsets: np.ndarray | int) -> np.ndarray | int:
    """The 1-based line of byte ``offsets``, given :func:`line_breaks`."""
    return np.searchsorted(breaks, offsets, side="left") + 1


@dataclass(frozen=True)
class Records:
    """The non-empty records of a file (CSV rows, or JSON lines): where each starts and ends."""

    starts: np.ndarray  # byte offset of each record's first character
    ends: np.ndarray  # byte offset just after its last character (before the line break)
    lines: np.ndarray  # its 1-based line

    def __len__(self) -> int:
        return len(self.starts)


def _lines_as_records(data: bytes, breaks: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Every physical line (start, end without its line break)."""
    starts = np.concatenate([[0], breaks + 1])
    ends = np.concatenate([breaks, [len(data)]])
    if len(breaks):  # the CR of a CRLF is part of the line break
        array = np.frombuffer(data, dtype=np.uint8)
        crlf = (array[breaks] == 10) & (breaks > 0) & (array[np.maximum(breaks - 1, 0)] == 13)
        ends[:-1] -= crlf.astype(np.int64)
    return starts, ends


def records(data: bytes, *, quoted: bool = True) -> Records | None:
    """The non-empty records of ``data``, as the CSV reader splits them (``quoted``: CSV quoting;
    else one record per line, as for JSON lines). Blank lines are not records (the readers skip
    them). None when the records cannot be told apart (never expected; the callers then say less).
    """
    breaks = line_breaks(data)
    if not quoted or b'"' not in data:
        starts, ends = _lines_as_records(data, breaks)
    else:
        starts_list, ends_list, position = [], [], 0
        for match in _RECORD.finditer(data):
            if match.start() != position:
                return None
            if match.start() == len(data) and starts_list:
                break
            starts_list.append(match.start(1))
            ends_list.append(match.end(1))
            position = match.end()
            if position >= len(data):
                break
        starts, ends = np.array(starts_list, dtype=np.int64), np.array(ends_list, dtype=np.int64)
    keep = ends > starts
    starts, ends = starts[keep], ends[keep]
    return Records(starts, ends, line_of(breaks, starts))


def row_lines(data: bytes, *, quoted: bool, header: bool) -> np.ndarray | None:
    """The line of every data row (index ``row_number - 1``): the records after the header (CSV)
    or every non-empty line (JSON lines)."""
    found = records(data, quoted=quoted)
    if found is None:
        return None
    return found.lines[1:] if header else found.lines


@dataclass(frozen=True)
class Malformed:
    """Where the rows with the wrong number of values are: their data row numbers (1-based), the
    row numbers of the good rows in the order the reader returned them, and every row's line."""

    bad_rows: np.ndarray
    bad_texts: list[bytes]  # the original text of each bad row, in file order
    good_rows: np.ndarray
    lines: np.ndarray


def place_malformed_rows(data: bytes, texts: list[str], good_count: int) -> Malformed | None:
    """Find the rows the CSV reader skipped (their ``texts``, in any order) among the records of
    ``data`` (the header first). A row's number of values depends only on its text, so a record
    is malformed exactly when its text is one of ``texts``. None unless the counts agree with the
    reader's (then the rows cannot be placed)."""
    found = records(data, quoted=True)
    if found is None or len(found) != 1 + good_count + len(texts):
        return None
    wanted = Counter(text.encode("utf-8") for text in texts)
    lengths = np.array(sorted({len(text) for text in wanted}), dtype=np.int64)
    starts, ends = found.starts[1:], found.ends[1:]
    candidates = np.flatnonzero(np.isin(ends - starts, lengths))
    bad = np.array([i for i in candidates.tolist() if data[starts[i] : ends[i]] in wanted], dtype=np.int64)
    if len(bad) != len(texts):
        return None
    is_bad = np.zeros(len(starts), dtype=bool)
    is_bad[bad] = True
    rows = np.arange(1, len(starts) + 1, dtype=np.int64)
    texts_in_order = [data[starts[i] : ends[i]] for i in bad.tolist()]
    return Malformed(rows[is_bad], texts_in_order, rows[~is_bad], found.lines[1:])


def locate(data: bytes, offset: int, *, quoted: bool) -> tuple[int, int | None, int | None]:
    """Where byte ``offset`` is: its line, and for CSV the index of its record among the non-empty
    records (0: the header) and of its value in the record (0-based); None where unknown."""
    line = int(line_of(line_breaks(data), offset))
    if not quoted:
        return line, None, None
    found = records(data, quoted=True)
    index = -1 if found is None else int(np.searchsorted(found.starts, offset, side="right")) - 1
    if found is None or index < 0:
        return line, None, None
    position, end, value = int(found.starts[index]), int(found.ends[index]), 0
    while position <= end:
        match = _VALUE_AND_DELIMITER.match(data, position, end)
        if match is None:
            break
        if offset < match.end() or match.end() >= end:
            return line, index, value
        position, value = match.end(), value + 1
    return line, index, None


def has_control_bytes(column: pa.ChunkedArray | pa.Array) -> bool:
    """Whether a text column may hold a control character (:data:`CONTROL_CHARACTERS`): False only
    when no value's bytes include one (a scan of the values buffer, about 1 ns per byte); True for
    a layout it does not read."""
    chunks = column.chunks if isinstance(column, pa.ChunkedArray) else [column]
    for chunk in chunks:
        if pa.types.is_dictionary(chunk.type):
            chunk = chunk.dictionary
        if pa.types.is_null(chunk.type) or len(chunk) == 0:
            continue
        if not (pa.types.is_string(chunk.type) or pa.types.is_large_string(chunk.type)):
            return True
        offsets_buffer, data_buffer = chunk.buffers()[1:3]
        if data_buffer is None:
            continue
        width = np.int64 if pa.types.is_large_string(chunk.type) else np.int32
        offsets = np.frombuffer(offsets_buffer, dtype=width)[chunk.offset : chunk.offset + len(chunk) + 1]
        values = np.frombuffer(data_buffer, dtype=np.uint8)[offsets[0] : offsets[-1]]
        if len(values) and values.min() < 32 and np.any((values < 32) & (values != 9)):
            return True
    return False
