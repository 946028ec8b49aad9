"""Output handed over by its place in the artifact file comes out exactly as if it had been kept
in memory: same bytes, same prefixes, same order."""

from __future__ import annotations

import os
import random
from datetime import UTC, datetime
from pathlib import Path

import pytest

from wtflow.consoles import PlainConsole, RawConsole, writer
from wtflow.events import NodeFinished, NodeSpec, NodeStarted, OutputReceived, RunFinished, RunStarted
from wtflow.status import Status

RUN = "0123456789abcdef"
NOW = datetime(2026, 1, 1, tzinfo=UTC)


_LETTERS = bytes(b"abc\n\n"[i % 5] for i in range(256))


def _chunks(seed: int) -> list[tuple[int, str, bytes]]:
    """Two nodes' interleaved chunks: short lines, blank lines, a line longer than a console holds
    back, and last lines without a newline."""
    rng = random.Random(seed)
    out = []
    for _ in range(150):
        index, stream = rng.choice([(1, "stdout"), (1, "stderr"), (2, "stdout")])
        size = rng.choice([1, 5, 40, 300, 3000, 70_000])
        data = rng.randbytes(size).translate(_LETTERS)
        out.append((index, stream, data))
    return out


def _show(console: RawConsole | PlainConsole, tmp_path: Path, chunks: list[tuple[int, str, bytes]]) -> None:
    specs = tuple(
        NodeSpec(i, ("root", *((f"n{i}",) if i else ())), None if i == 0 else 0, i, "command" if i else None,
                 "x", False, False)
        for i in range(3)
    )  # fmt: skip
    files: dict[tuple[int, str], Path] = {}
    console.handle(RunStarted(RUN, "wf", NOW, Path("/runs/wf"), specs, {}))
    for i in (1, 2):
        for stream in ("stdout", "stderr"):
            files[i, stream] = tmp_path / f"n{i}.{stream}"
            files[i, stream].write_bytes(b"")
        console.handle(NodeStarted(RUN, i, specs[i].path, 1, NOW, files[i, "stdout"], files[i, "stderr"], 1))
    for index, stream, data in chunks:
        with files[index, stream].open("ab") as f:  # as the engine does: to disk, then the event
            f.write(data)
        console.handle(OutputReceived(RUN, index, specs[index].path, stream, data))
    for i in (1, 2):
        console.handle(NodeFinished(RUN, i, specs[i].path, 1, Status.SUCCEEDED, 0, NOW, NOW))
    console.handle(RunFinished(RUN, Status.SUCCEEDED, 0, NOW, {}))
    console.close()


@pytest.mark.parametrize("kind", ["raw", "plain"])
@pytest.mark.parametrize("seed", [1, 2, 3])
def test_slices_read_back_give_the_same_output(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, kind: str, seed: int
) -> None:
    chunks = _chunks(seed)
    shown = {}
    for mode in ("memory", "slices"):
        if mode == "slices":
            monkeypatch.setattr(writer, "MEMORY_LIMIT", -1)  # always behind: everything by its place
            monkeypatch.setattr(writer, "_PIECE", 997)  # lines cut across reads
        folder = tmp_path / mode
        folder.mkdir()
        with (folder / "out").open("w") as out, (folder / "err").open("w") as err:
            console = RawConsole(out, err) if kind == "raw" else PlainConsole(out)
            _show(console, folder, chunks)
        shown[mode] = (folder / "out").read_bytes(), (folder / "err").read_bytes()
    assert shown["slices"] == shown["memory"]
    assert len(shown["memory"][0]) > sum(len(d) for i, s, d in chunks if s == "stdout") // 2


def test_a_reader_that_went_away_ends_the_output_and_says_so(tmp_path: Path) -> None:
    read_end, write_end = os.pipe()
    os.close(read_end)  # `wtflow run | head -1` once head has exited
    with os.fdopen(write_end, "w") as out:
        console = PlainConsole(out)
        _show(console, tmp_path, _chunks(1))  # returns: nothing waits for a reader that is gone
    assert console.error == "PlainConsole stopped: [Errno 32] Broken pipe"


@pytest.mark.parametrize(
    ("data", "shown"),
    [
        (b"one\n", b"[n] one\n"),
        (b"one\ntwo\n", b"[n] one\n[n] two\n"),
        (b"\n\n", b"[n] \n[n] \n"),
        (b"no newline", b"[n] no newline\n"),
        (b"one\npart", b"[n] one\n[n] part\n"),
    ],
)
def test_prefixed_lines_are_the_parts_of_one_write(data: bytes, shown: bytes) -> None:
    assert b"".join(writer.prefix_lines(b"[n] ", data)) == shown
