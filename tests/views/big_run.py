"""A recorded run of thousands of nodes, as `wtflow show --json` gives it, with real output files.

Running 5000 real processes takes a minute on a loaded two-core machine; the report's size
and behaviour depend only on this shape (and the files), which is what the record holds."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

T0 = datetime(2025, 1, 1, 12, 0, tzinfo=UTC)


def big_run(folder: Path, *, groups: int = 50, per_group: int = 100) -> dict[str, Any]:
    """A run of `groups` parallel groups of `per_group` nodes, one after another; one node in
    each thousand fails, with a traceback on stderr, after a retry."""
    run_dir = folder / "artifacts"
    nodes: list[dict[str, Any]] = [_node("root", 0, None, [])]
    clock = 0.0
    for g in range(groups):
        nodes.append(_node(f"root/g{g}", 1, None, [], parallel=True))
        for i in range(per_group):
            path = f"root/g{g}/n{g}-{i}"
            fails = (g * per_group + i) % 1000 == 7
            attempts: list[dict[str, Any]] = []
            for n in (1, 2) if fails else (1,):
                out = run_dir / path / ("stdout" if n == 1 else f"attempt-{n}/stdout")
                err = out.with_name("stderr")
                out.parent.mkdir(parents=True, exist_ok=True)
                out.write_text(f"node {path} says hello\n" * 20)
                err.write_text("Traceback (most recent call last):\nAssertionError: boom\n" if fails else "")
                start = clock + i * 0.01 + (n - 1) * 0.5
                attempts.append({
                    "n": n, "status": "failed" if fails else "succeeded", "exit_code": 1 if fails else 0,
                    "pid": 1000 + i, "started_at": (T0 + timedelta(seconds=start)).isoformat(),
                    "ended_at": (T0 + timedelta(seconds=start + 0.4)).isoformat(), "duration": 0.4,
                    "outputs": {name: {"path": str(p), "size": p.stat().st_size}
                                for name, p in (("stdout", out), ("stderr", err))},
                })  # fmt: skip
            nodes.append(_node(path, 2, attempts[-1]["exit_code"], attempts))
        clock += per_group * 0.01 + 1
    for node in nodes:
        if node["kind"] is None:
            below = [n for n in nodes if n["path"].startswith(node["path"] + "/")]
            node["status"] = "failed" if any(n["status"] == "failed" for n in below) else "succeeded"
    return {
        "id": "b" * 32, "workflow": "big", "status": "failed", "exit_code": 1,
        "started_at": T0.isoformat(), "ended_at": (T0 + timedelta(seconds=clock)).isoformat(),
        "duration": clock, "host": "ci", "user": "me", "wtflow_version": "0.1.0",
        "run_dir": str(run_dir), "config": {}, "nodes": nodes,
    }  # fmt: skip


def _node(
    path: str, depth: int, exit_code: int | None, attempts: list[dict[str, Any]], *, parallel: bool = False
) -> dict[str, Any]:
    return {
        "path": path, "name": path.rsplit("/", 1)[-1], "depth": depth,
        "kind": "command" if attempts else None, "executes": "python say.py" if attempts else None,
        "allow_failure": False, "parallel": parallel, "exit_code": exit_code,
        "status": attempts[-1]["status"] if attempts else "succeeded",
        "started_at": attempts[0]["started_at"] if attempts else None,
        "ended_at": attempts[-1]["ended_at"] if attempts else None, "duration": None, "attempts": attempts,
    }  # fmt: skip
