"""GitLab CI: on when `GITLAB_CI=true` or with `--ci gitlab`.

Each attempt's output, when it ends (see grouped.py), in a collapsible section of the job log:

    ESC[0Ksection_start:<start, unix time>:<name>[collapsed=true]\\rESC[0K<path> <status> in 1.23s
    <stdout and stderr, secrets masked>
    ESC[0Ksection_end:<end, unix time>:<name>\\rESC[0K

The times are the attempt's own, so GitLab shows how long it took. A section is collapsed when
the node succeeded and open when it did not; a failure is followed by a red line saying why.
Names follow GitLab's rule (letters, digits, `_`, `.`, `-`) and carry the node's index, so two
paths that differ only in other characters still get two sections.
"""

from __future__ import annotations

import re

from wtflow.events import NodeFinished, NodeStarted
from wtflow.reports.grouped import CiLog
from wtflow.status import Status

_NOT_IN_NAME = re.compile(r"[^A-Za-z0-9_.-]")
_CONTROL = re.compile(r"[\x00-\x1f\x7f]")
ESC = "\x1b"


def section_name(path: tuple[str, ...], index: int, attempt: int) -> str:
    name = _NOT_IN_NAME.sub("_", "/".join(path).replace("/", "."))
    return f"wtflow_{index}_{attempt}_{name}"


class GitLabLog(CiLog):
    def attempt_finished(self, started: NodeStarted, finished: NodeFinished) -> None:
        path = _CONTROL.sub("?", "/".join(finished.path))
        status = finished.status
        if self.show_output:
            name = section_name(finished.path, finished.index, finished.attempt)
            took = (finished.ended_at - started.started_at).total_seconds()
            attempt = f" (attempt {finished.attempt})" if finished.attempt > 1 else ""
            code = f" (exit {finished.exit_code})" if status is Status.FAILED else ""
            collapsed = "[collapsed=true]" if status is Status.SUCCEEDED else ""
            start, end = int(started.started_at.timestamp()), int(finished.ended_at.timestamp())
            self.write(
                f"{ESC}[0Ksection_start:{start}:{name}{collapsed}\r{ESC}[0K"
                f"{path}{attempt} {status}{code} in {took:.2f}s\n"
            )
            self.write_output(started, finished)
            self.write(f"{ESC}[0Ksection_end:{end}:{name}\r{ESC}[0K\n")
        if finished.will_retry or status not in (Status.FAILED, Status.TIMED_OUT):
            return
        what = f"exit {finished.exit_code}" if status is Status.FAILED else "timed out"
        line = self.last_error_line(started)
        allowed = self.outcomes.nodes[finished.index].spec.allow_failure
        colour = "33" if allowed else "31"
        note = " (allowed to fail)" if allowed else ""
        self.write(f"{ESC}[{colour};1m{path} failed{note}: {what}{': ' + line if line else ''}{ESC}[0m\n")
