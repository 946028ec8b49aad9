"""A JUnit XML report (`--junit-xml PATH`), the format Jenkins, GitLab and GitHub's test
reporters read: one `testsuite` per workflow under a `testsuites` root, one `testcase` per
node that executes something.

    succeeded           <testcase/>
    failed              <failure type="failed" message="exit 1">  tail of stderr
    failed, allowed     <skipped type="allowed_failure">           as pytest writes an xfail
    retried attempts    <flakyFailure> (it passed later) or <rerunFailure>, as Surefire writes
    timed out/cancelled <error type="timed_out|cancelled">
    skipped             <skipped message="<reason>">

The file is written when the run ends (also when it failed or was interrupted: the engine
sends RunFinished and closes its listeners either way), atomically, so a reader never sees
half a file. The first workflow of a process starts the file afresh; the next workflows of the
same `wtflow run` are added to it as further testsuites.
"""

from __future__ import annotations

import os
import re
import socket
import tempfile
import xml.etree.ElementTree as ET
from collections.abc import Iterable
from pathlib import Path

from wtflow.events import Event
from wtflow.reports.outcomes import Outcome, Outcomes
from wtflow.reports.output import Masker, check_writable, first_in_process, tail
from wtflow.status import Status

OUTPUT_CAP = 64 * 1024  # bytes of each stream kept in system-out / system-err
FAILURE_TAIL = 4 * 1024  # bytes of stderr in a <failure>

# XML 1.0 allows neither these characters nor their escapes; terminal colours are noise there.
_ANSI = re.compile(r"\x1b\[[0-?]*[ -/]*[@-~]")
_NOT_XML = re.compile("[^\t\n\r\x20-\ud7ff\ue000-\ufffd\U00010000-\U0010ffff]")


def xml_text(data: bytes | str) -> str:
    text = data.decode(errors="replace") if isinstance(data, bytes) else data
    return _NOT_XML.sub("\ufffd", _ANSI.sub("", text))


class JUnitReport:
    """Listener writing the JUnit file when the run ends."""

    wants_output = False

    def __init__(self, path: Path, secrets: Iterable[str] = ()) -> None:
        self.path = path
        check_writable(path, what="JUnit report", fix="--junit-xml (or WTFLOW_JUNIT_XML)")
        self._outcomes = Outcomes()
        self._mask = Masker(secrets)

    def handle(self, event: Event) -> None:
        self._outcomes.feed(event)

    def close(self) -> list[str]:
        if self._outcomes.started is None:
            return []  # the run never began: nothing to report
        root = self._existing_root()
        root.append(self._suite())
        _totals(root)
        ET.indent(root)
        try:
            self._replace(ET.tostring(root, encoding="utf-8", xml_declaration=True) + b"\n")
        except OSError as e:
            return [f"cannot write the JUnit report {str(self.path)!r}: {e.strerror}"]
        return []

    def _existing_root(self) -> ET.Element:
        if not first_in_process(self.path) and self.path.exists():
            try:
                root = ET.parse(self.path).getroot()
            except (ET.ParseError, OSError):
                root = None
            if root is not None and root.tag == "testsuites":
                return root
        return ET.Element("testsuites", name="wtflow")

    def _suite(self) -> ET.Element:
        outcomes = self._outcomes
        started = outcomes.started
        assert started is not None
        nodes = outcomes.ordered()
        ended = (
            outcomes.finished.ended_at
            if outcomes.finished
            else max((n.ended_at for n in nodes if n.ended_at), default=started.started_at)
        )
        suite = ET.Element(
            "testsuite",
            name=started.workflow,
            tests=str(len(nodes)),
            failures=str(sum(n.status is Status.FAILED and not n.allowed_failure for n in nodes)),
            errors=str(sum(_is_error(n) for n in nodes)),
            skipped=str(sum(n.status is Status.SKIPPED or n.allowed_failure for n in nodes)),
            time=_seconds((ended - started.started_at).total_seconds()),
            timestamp=started.started_at.isoformat(timespec="seconds"),
            hostname=socket.gethostname(),
            id=started.run_id,
        )
        properties = ET.SubElement(suite, "properties")
        for name, value in (("run_id", started.run_id), ("run_dir", str(started.run_dir))):
            ET.SubElement(properties, "property", name=name, value=value)
        for node in nodes:
            suite.append(self._case(node))
        return suite

    def _case(self, node: Outcome) -> ET.Element:
        case = ET.Element(
            "testcase",
            classname=node.path,
            name=node.spec.path[-1],
            time=_seconds(node.seconds),
        )
        status = node.status
        if node.allowed_failure:
            child = ET.SubElement(case, "skipped", type="allowed_failure", message=node.label)
        elif status is Status.FAILED:
            child = ET.SubElement(case, "failure", type="failed", message=f"exit {node.exit_code}")
            child.text = self._clean(tail(node.stderr_path, FAILURE_TAIL)[0])
        elif status in (Status.TIMED_OUT, Status.CANCELLED):
            child = ET.SubElement(case, "error", type=str(status), message=str(status).replace("_", " "))
            child.text = self._clean(tail(node.stderr_path, FAILURE_TAIL)[0])
        elif status is Status.SKIPPED:
            ET.SubElement(case, "skipped", message=node.reason or "skipped")
        elif status is not Status.SUCCEEDED:  # never finished: the run was abandoned
            ET.SubElement(case, "error", type="unfinished", message=f"ended {status}")
        for attempt, failed, code, stderr in node.retried:
            # Surefire's words: flaky when a later attempt passed, rerun when none did.
            kind = "flaky" if status is Status.SUCCEEDED else "rerun"
            kind += "Failure" if failed is Status.FAILED else "Error"
            what = f"exit {code}" if failed is Status.FAILED else str(failed).replace("_", " ")
            rerun = ET.SubElement(case, kind, type=str(failed), message=f"attempt {attempt}: {what}")
            ET.SubElement(rerun, "stackTrace").text = self._clean(tail(stderr, FAILURE_TAIL)[0])
        for stream, path in (("system-out", node.stdout_path), ("system-err", node.stderr_path)):
            data, size = tail(path, OUTPUT_CAP)
            if size:  # an empty stream is left out
                ET.SubElement(case, stream).text = self._stream(path, data, size)
        return case

    def _stream(self, path: Path | None, data: bytes, size: int) -> str:
        if size > len(data):
            head = f"[wtflow: the last {len(data)} of {size} bytes; all of it in {path}]\n"
        else:
            head = f"[wtflow: {size} bytes, kept in {path}]\n"
        return head + self._clean(data)

    def _clean(self, data: bytes) -> str:
        return xml_text(self._mask.text(data.decode(errors="replace")))

    def _replace(self, content: bytes) -> None:
        self.path.parent.mkdir(parents=True, exist_ok=True)
        fd, tmp = tempfile.mkstemp(dir=self.path.parent, prefix=f".{self.path.name}.", suffix=".tmp")
        try:
            with os.fdopen(fd, "wb") as f:
                f.write(content)
            os.chmod(tmp, 0o644)  # a report is for CI to upload, unlike the private artifacts
            os.replace(tmp, self.path)
        except BaseException:
            Path(tmp).unlink(missing_ok=True)
            raise


def _is_error(node: Outcome) -> bool:
    if node.allowed_failure:
        return False
    return node.status in (Status.TIMED_OUT, Status.CANCELLED, Status.PENDING, Status.RUNNING)


def _seconds(value: float) -> str:
    return f"{max(value, 0.0):.3f}"


def _totals(root: ET.Element) -> None:
    suites = root.findall("testsuite")
    for key in ("tests", "failures", "errors"):
        root.set(key, str(sum(int(s.get(key, "0")) for s in suites)))
    root.set("time", _seconds(sum(float(s.get("time", "0")) for s in suites)))
