"""The CLI's fixed cost: a command imports only what it needs (issue 18, item 6).

Checked by module, not by clock: `wtflow --version` and `wtflow list` must not load the engine,
asyncio, the consoles or SQLAlchemy, which together are most of a run's start-up."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

HEAVY = ("wtflow.engine", "asyncio", "wtflow.consoles", "wtflow.reports", "sqlalchemy", "aiofiles")
PROBE = """\
import sys
from wtflow.cli import main
try:
    main(sys.argv[1:])
except SystemExit:
    pass
heavy = {heavy!r}
print(sorted(m for m in heavy if m in sys.modules))
"""


@pytest.mark.parametrize("argv", [["--version"], ["list"], ["--no-config", "config"]])
def test_a_command_that_runs_nothing_imports_no_engine(tmp_path: Path, argv: list[str]) -> None:
    (tmp_path / "wtfile.py").write_text(
        "import wtflow\n\n@wtflow.workflow\ndef ci():\n"
        '    return wtflow.Node(name="n", executable=wtflow.Command("true"))\n'
    )
    probe = PROBE.format(heavy=HEAVY)
    out = subprocess.run(
        [sys.executable, "-c", probe, *argv], cwd=tmp_path, capture_output=True, text=True, check=True
    ).stdout
    assert out.splitlines()[-1] == "[]"


def test_the_package_names_stay_reachable() -> None:
    import wtflow

    assert set(wtflow.__all__) <= set(dir(wtflow))
    for name in wtflow.__all__:
        assert getattr(wtflow, name) is not None
    with pytest.raises(AttributeError, match="module 'wtflow' has no attribute 'Nope'"):
        _ = wtflow.Nope  # type: ignore[attr-defined]
