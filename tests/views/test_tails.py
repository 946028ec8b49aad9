"""Output tails for the views: someone else's bytes, made into text a page can show."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from wtflow.views.tails import clean, collect_tails, read_tail, whole_characters


def test_escape_sequences_and_controls_are_dropped_and_progress_shows_its_last_state() -> None:
    raw = b"\x1b[31mred\x1b[0m \x1b]0;title\x07bell\x07 nul\x00\n10%\r50%\r100%\r\nend\n"
    assert clean(raw) == "red bell nul\n100%\nend\n"
    assert clean(b"bad \xff byte") == "bad \ufffd byte"


def test_a_character_cut_at_the_end_waits_for_the_rest() -> None:
    snow = "☃".encode()
    assert whole_characters(b"a" + snow[:2]) == b"a"
    assert whole_characters(b"a" + snow) == b"a" + snow
    assert whole_characters(b"abc") == b"abc"


def test_the_tail_begins_at_a_whole_line_and_says_what_it_left_out(tmp_path: Path) -> None:
    path = tmp_path / "stdout"
    path.write_bytes(b"".join(b"line %d\n" % i for i in range(1000)))
    tail = read_tail(str(path), max_bytes=4096, max_lines=3)
    assert tail.text == "line 997\nline 998\nline 999\n"
    assert tail.skipped == path.stat().st_size - len(tail.text)
    assert tail.end == path.stat().st_size
    assert read_tail(str(tmp_path / "gone"), max_bytes=10).note == "the file is gone (moved or deleted)"


def test_failed_nodes_get_their_tails_first_within_the_budget(tmp_path: Path) -> None:
    def node(name: str, status: str) -> dict[str, Any]:
        path = tmp_path / name
        path.write_text(f"{name}\n" * 40)
        outputs = {"stdout": {"path": str(path), "size": path.stat().st_size}}
        return {"path": f"r/{name}", "status": status, "attempts": [{"n": 1, "outputs": outputs}]}

    nodes = [node("ok", "succeeded"), node("bad", "failed")]
    tails = collect_tails(nodes, budget=160)  # what the failed one takes
    assert tails["r/bad"]["stdout"].text == "bad\n" * 40
    assert tails["r/ok"]["stdout"].text is None
    assert tails["r/ok"]["stdout"].note == "not inlined: the report holds enough output"
