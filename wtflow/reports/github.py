"""GitHub Actions: on when `GITHUB_ACTIONS=true` or with `--ci github`.

    ::add-mask::<secret>                    first, for every `Secret` in the nodes' env
    ::group::<path>                         per attempt, when it ends (see grouped.py):
    ::stop-commands::<token>                  the node's own `::` lines are not commands
    <stdout and stderr, secrets masked>
    ::<token>::
    ::endgroup::
    ::error title=<path>::exit 1: <last stderr line>      a failure (a warning if allowed)

and, when the run ends, a Markdown table of the nodes and the failures' tails appended to
`$GITHUB_STEP_SUMMARY`. Escaping follows GitHub's workflow-command rules: `%`, CR and LF in
the message; also `:` and `,` in properties.
"""

from __future__ import annotations

import secrets as random_tokens
from collections.abc import Iterable
from pathlib import Path
from typing import IO

from wtflow.events import NodeFinished, NodeStarted, RunFinished, RunStarted
from wtflow.reports.grouped import CiLog
from wtflow.reports.outcomes import Outcome
from wtflow.reports.output import tail
from wtflow.status import Status
from wtflow.terminal import STATUS_STYLE

SUMMARY_TAIL_LINES = 20
SUMMARY_ROWS = 300
SUMMARY_FAILURES = 20


def escape_data(text: str) -> str:
    return text.replace("%", "%25").replace("\r", "%0D").replace("\n", "%0A")


def escape_property(text: str) -> str:
    return escape_data(text).replace(":", "%3A").replace(",", "%2C")


def command(name: str, message: str, **properties: str) -> str:
    props = ",".join(f"{k}={escape_property(v)}" for k, v in properties.items())
    return f"::{name}{' ' + props if props else ''}::{escape_data(message)}\n"


class GitHubLog(CiLog):
    def __init__(
        self,
        out: IO[bytes] | None = None,
        *,
        secrets: Iterable[str] = (),
        show_output: bool = True,
        summary_path: Path | None = None,
        token: str | None = None,
    ) -> None:
        super().__init__(out, secrets=secrets, show_output=show_output)
        self.summary_path = summary_path
        self._token = token or random_tokens.token_hex(16)  # unguessable: a node cannot end it early

    def run_started(self, event: RunStarted) -> None:
        for secret in self.mask.secrets:
            for line in secret.splitlines():  # GitHub masks a multi-line value line by line
                if line.strip():
                    self.write(command("add-mask", line))

    def attempt_finished(self, started: NodeStarted, finished: NodeFinished) -> None:
        path = "/".join(finished.path)
        if self.show_output:
            title = path if finished.attempt == 1 else f"{path} (attempt {finished.attempt})"
            self.write(command("group", title))
            self.write(f"::stop-commands::{self._token}\n")
            self.write_output(started, finished)
            self.write(f"::{self._token}::\n")
            self.write("::endgroup::\n")
        if finished.will_retry or finished.status not in (Status.FAILED, Status.TIMED_OUT):
            return
        what = f"exit {finished.exit_code}" if finished.status is Status.FAILED else "timed out"
        line = self.last_error_line(started)
        message = f"{what}: {line}" if line else what
        allowed = self.outcomes.nodes[finished.index].spec.allow_failure
        self.write(command("warning" if allowed else "error", message, title=path))

    def run_finished(self, event: RunFinished) -> None:
        if self.summary_path is None:
            return
        with self.summary_path.open("a", encoding="utf-8") as f:
            f.write(self.summary(event))

    def summary(self, event: RunFinished) -> str:
        started = self.outcomes.started
        workflow = started.workflow if started else "?"
        nodes = self.outcomes.ordered()
        lines = [
            f"### wtflow: `{_md(workflow)}` {event.status}",
            "",
            "| node | status | attempts | duration |",
            "| --- | --- | ---: | ---: |",
        ]
        # GitHub keeps at most 1 MiB of summary per step: a big fan-out lists what did not pass.
        shown = (
            nodes if len(nodes) <= SUMMARY_ROWS else [n for n in nodes if n.status is not Status.SUCCEEDED]
        )
        for n in shown[:SUMMARY_ROWS]:
            mark = STATUS_STYLE[n.status][0]
            took = f"{n.seconds:.2f}s" if n.attempts else ""
            lines.append(f"| `{_md(n.path)}` | {mark} {_md(n.label)} | {n.attempts} | {took} |")
        if len(nodes) > len(shown[:SUMMARY_ROWS]):
            lines += [
                "",
                f"{len(nodes) - len(shown[:SUMMARY_ROWS])} more nodes not listed (see the JUnit report).",
            ]
        failures = [n for n in nodes if n.status in (Status.FAILED, Status.TIMED_OUT)]
        if failures:
            lines += ["", "#### Failures"]
            for n in failures[:SUMMARY_FAILURES]:
                lines += ["", *self._failure(n)]
            if len(failures) > SUMMARY_FAILURES:
                lines += ["", f"and {len(failures) - SUMMARY_FAILURES} more failures."]
        return "\n".join(lines) + "\n\n"

    def _failure(self, n: Outcome) -> list[str]:
        data, _ = tail(n.stderr_path, 16 * 1024)
        text = self.mask.text(data.decode(errors="replace"))
        shown = text.splitlines()[-SUMMARY_TAIL_LINES:]
        fence = "```"
        while fence in text:  # a fence longer than any run of backticks in the tail
            fence += "`"
        head = f"`{_md(n.path)}`: {_md(n.label)}"
        if not shown:
            return [f"{head}, nothing on stderr"]
        return [f"{head}, the last lines of stderr:", "", fence + "text", *shown, fence]


def _md(text: str) -> str:
    """Safe inside a table cell and inline code."""
    return text.replace("|", "\\|").replace("`", "'")
