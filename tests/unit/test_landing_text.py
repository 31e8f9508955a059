"""orchestration/landing/text.py: where rows start, and control characters made visible (pure)."""

import random

import pyarrow as pa
import pyarrow.csv as pa_csv

from orchestration.landing.text import has_control_bytes, locate, place_malformed_rows, records, visible


def test_control_characters_are_escaped_and_long_runs_shortened():
    assert visible("U\x00S\t\n\r\x1f\x7f") == "U\\x00S\\t\\n\\r\\x1f\\x7f"
    assert visible("end" + "\x00" * 64) == "end[\\x00 x 64]"
    assert visible("plain é text") == "plain é text"
    assert visible("x" * 10, limit=4) == "xxxx..."


def test_records_start_on_their_physical_lines():
    data = b'a,b\n1,"x\r\ny"\n\n2,3\r\n\r4,5'
    found = records(data)
    assert [data[s:e] for s, e in zip(found.starts, found.ends, strict=True)] == [
        b"a,b", b'1,"x\r\ny"', b"2,3", b"4,5",
    ]  # fmt: skip
    assert found.lines.tolist() == [1, 2, 5, 7]  # CRLF is one line break, a lone CR one too
    assert records(b"a\n\nb\n", quoted=False).lines.tolist() == [1, 3]
    assert locate(data, data.index(b"5"), quoted=True) == (7, 3, 1)
    assert locate(data, data.index(b"y"), quoted=True) == (3, 1, 1)
    assert locate(data, 0, quoted=True) == (1, 0, 0)


def _pyarrow_rows(data: bytes) -> tuple[int, list[str]]:
    skipped: list[str] = []

    def skip(row):
        skipped.append(row.text)
        return "skip"

    table = pa_csv.read_csv(
        pa.py_buffer(data),
        parse_options=pa_csv.ParseOptions(newlines_in_values=True, invalid_row_handler=skip),
        convert_options=pa_csv.ConvertOptions(column_types={"x": pa.string(), "y": pa.string()}),
    )
    return table.num_rows, skipped


def test_records_are_the_rows_pyarrow_reads_on_random_quoting_and_line_breaks():
    rng = random.Random(7)
    pieces = [b"a", b",", b'"', b'""', b"\n", b"\r", b"\r\n", b" "]
    for _ in range(500):
        data = b"x,y\n" + b"".join(rng.choice(pieces) for _ in range(rng.randint(0, 40)))
        good, skipped = _pyarrow_rows(data)
        assert len(records(data)) == 1 + good + len(skipped), data
        if skipped:
            placed = place_malformed_rows(data, skipped, good)
            assert placed is not None, data
            assert sorted(t.decode() for t in placed.bad_texts) == sorted(skipped), data


def test_only_a_column_with_a_control_byte_needs_the_check():
    assert not has_control_bytes(pa.array(["ab", None, "c\td"]))
    assert has_control_bytes(pa.array(["ab", "c\x00d"]))
    assert not has_control_bytes(pa.array(["ab", "c\x00d"]).slice(0, 1))  # outside the slice
    assert has_control_bytes(pa.chunked_array([["a"], ["b\n"]]))
    assert has_control_bytes(pa.array(["a\x01"], pa.large_string()))
