"""A run as HTML: its header, its failures, its tree and its timeline, for the report and the UI.

Pure functions from the `show --json` dict to text. Everything that came from the record or
from a node's output goes through `esc` (names, commands and output are someone else's
text); numbers in style attributes are formatted here. The tree is nested `<details>`,
collapsed below the root, so a 5000-node run lays out only what is opened.
"""

from __future__ import annotations

import base64
import hashlib
import html
import re
from collections.abc import Callable, Mapping, Sequence
from datetime import datetime
from importlib import resources

from wtflow.status import Status, exit_text
from wtflow.terminal import STATUS_STYLE
from wtflow.views.tails import STREAMS, Tail
from wtflow.views.timing import (
    CriticalPath,
    Record,
    critical_path,
    elapsed,
    interval,
    parse_time,
    seconds_text,
    subtree_intervals,
    time_text,
)

NodeHref = Callable[[Record], str]  # a node's page (the UI), or None for an anchor in the page
Tails = Mapping[str, Mapping[str, Tail]]


def esc(value: object) -> str:
    return html.escape("" if value is None else str(value), quote=True)


def asset(name: str) -> str:
    """The text of a file in wtflow/views/assets (the report inlines them, the UI serves them)."""
    return (resources.files("wtflow.views") / "assets" / name).read_text(encoding="utf-8")


def _status_class(status: object) -> str:
    return "s-" + re.sub(r"[^a-z_]", "", str(status))


def _mark(status: object) -> str:
    try:
        return STATUS_STYLE[Status(str(status))][0]
    except ValueError:
        return "?"


def _failed(item: Record) -> bool:
    try:
        return Status(str(item.get("status"))).is_failure
    except ValueError:
        return False


def _running(item: Record) -> bool:
    return item.get("status") == Status.RUNNING


def size_text(size: int) -> str:
    value = float(size)
    for unit in ("B", "kB", "MB", "GB"):
        if value < 1000 or unit == "GB":
            return f"{int(value)} {unit}" if unit == "B" else f"{value:.1f} {unit}"
        value /= 1000
    raise AssertionError("unreachable")  # pragma: no cover


def status_badge(item: Record) -> str:
    status = item.get("status")
    allowed = " (allowed)" if item.get("allow_failure") and _failed(item) else ""
    return f'<span class="st {_status_class(status)}">{_mark(status)} {esc(status)}{allowed}</span>'


def duration_text(item: Record, now: datetime) -> str:
    return seconds_text(elapsed(item, now), running=_running(item))


# -- the header ----------------------------------------------------------------------------


def run_header(run: Record, now: datetime) -> str:
    """Workflow, status, exit code, times, where it ran, and the node counts."""
    counts: dict[str, int] = {}
    for node in run.get("nodes") or ():
        if node.get("kind") is not None:
            counts[node["status"]] = counts.get(node["status"], 0) + 1
    count_text = ", ".join(f"{n} {esc(s)}" for s, n in sorted(counts.items(), key=lambda i: -i[1]))
    facts = [
        ("run", f"<code>{esc(run.get('id'))}</code>"),
        ("started", esc(time_text(run.get("started_at")))),
        ("ended", esc(time_text(run.get("ended_at"))) or ("still running" if _running(run) else "")),
        ("took", esc(duration_text(run, now))),
        ("on", esc(f"{run.get('user')}@{run.get('host')}")),
        ("wtflow", esc(run.get("wtflow_version"))),
        ("nodes", count_text),
        ("output", f"<code>{esc(run.get('run_dir'))}</code>"),
    ]
    rows = "".join(f"<dt>{k}</dt><dd>{v}</dd>" for k, v in facts if v)
    code = exit_text(run.get("exit_code"))
    return (
        f'<header class="run {_status_class(run.get("status"))}">'
        f"<h1>{esc(run.get('workflow'))} {status_badge(run)}"
        f"{f' <span class=exit>{esc(code)}</span>' if code else ''}</h1>"
        f"<dl>{rows}</dl></header>"
    )


def failures(run: Record, node_href: NodeHref | None = None) -> str:
    """Links to every node that failed (allowed failures included, and said so)."""
    nodes = run.get("nodes") or ()
    items = [
        f'<li><a href="{esc(_href(node, i, node_href))}">{esc(node["path"])}</a> {status_badge(node)} '
        f"{esc(exit_text(node.get('exit_code')))}</li>"
        for i, node in enumerate(nodes)
        if _failed(node) and node.get("kind") is not None
    ]
    if not items:
        return ""
    return f'<section class="failures"><h2>Failed</h2><ul>{"".join(items)}</ul></section>'


def _href(node: Record, index: int, node_href: NodeHref | None) -> str:
    return node_href(node) if node_href is not None else f"#n{index}"


# -- the tree ------------------------------------------------------------------------------


def tree(
    run: Record,
    now: datetime,
    *,
    critical: CriticalPath,
    tails: Tails | None = None,
    node_href: NodeHref | None = None,
) -> str:
    """Every node as a collapsible row: status, exit code, time, attempts; opened, what it ran
    and its output (the tails inline in the report, a link to the node's page in the UI).

    The markup is kept terse on purpose: it is repeated for every node of a 5000-node run."""
    nodes: Sequence[Record] = run.get("nodes") or ()
    base = str(run.get("run_dir") or "")
    out = [
        '<section class="tree-view"><h2>Tree</h2><p class="tools">'
        '<button type="button" data-tree="expand">Expand all</button> '
        '<button type="button" data-tree="collapse">Collapse all</button> '
        '<button type="button" data-tree="failures">Open failures</button></p><div class="tree">'
    ]
    # Open elements, innermost last: each node's <details> and, if it has children, its
    # <div class="kids"> (leaves get none: it is repeated thousands of times otherwise).
    closers: list[tuple[int, str]] = []
    spans = subtree_intervals(nodes, now)
    for i, node in enumerate(nodes):
        depth = int(node.get("depth") or 0)
        while closers and closers[-1][0] >= depth:
            out.append(closers.pop()[1])
        crit = " crit" if node["path"] in critical.paths else ""
        name = esc(node.get("name"))
        if node_href is not None:
            name = f'<a href="{esc(node_href(node))}">{name}</a>'
        attempts = node.get("attempts") or ()
        allowed = " (allowed)" if node.get("allow_failure") and _failed(node) else ""
        facts = [exit_text(node.get("exit_code")), _span_text(spans[i], running=_running(node))]
        if len(attempts) > 1:
            facts.append(f"attempts {len(attempts)}")
        small = " · ".join(esc(f) for f in facts if f)
        has_kids = i + 1 < len(nodes) and int(nodes[i + 1].get("depth") or 0) > depth
        out.append(
            f'<details class="node {_status_class(node.get("status"))}{crit}" id="n{i}"'
            f"{' open' if depth == 0 else ''}><summary><b>{_mark(node.get('status'))}</b> "
            f'<span class="name">{name}</span> <em>{esc(node.get("status"))}{allowed}</em> <small>{small}</small>'
            f"{' <span class=crit-mark>critical</span>' if crit else ''}</summary>"
            f'<div class="info">{_node_info(node, now, base, tails, node_href)}</div>'
            + ('<div class="kids">' if has_kids else "")
        )
        closers.append((depth, "</div></details>" if has_kids else "</details>"))
    out.extend(closer for _, closer in reversed(closers))
    out.append("</div></section>")
    return "".join(out)


def _span_text(span: tuple[datetime, datetime] | None, *, running: bool) -> str:
    return seconds_text((span[1] - span[0]).total_seconds(), running=running) if span else ""


def _node_info(
    node: Record, now: datetime, base: str, tails: Tails | None, node_href: NodeHref | None
) -> str:
    parts = []
    if node.get("kind") is not None:
        parts.append(
            f'<p class="exec"><span class="kind">{esc(node["kind"])}</span> '
            f"<code>{esc(node.get('executes'))}</code></p>"
        )
    attempts = node.get("attempts") or ()
    if len(attempts) > 1:
        parts.append(attempts_table(attempts, now, base))
    elif attempts:
        a = attempts[0]
        facts = [f"pid {a.get('pid')}" if a.get("pid") else "", f"started {time_text(a.get('started_at'))}"]
        parts.append(f'<p class="note">{esc(" · ".join(f for f in facts if f))}</p>')
    if tails is not None:
        for stream in STREAMS:
            tail = (tails.get(node["path"]) or {}).get(stream)
            if tail is not None:
                parts.append(output_tail(stream, tail, base))
    elif node_href is not None and attempts:
        parts.append(f'<p><a href="{esc(node_href(node))}">stdout and stderr</a></p>')
    return "".join(parts)


def attempts_table(attempts: Sequence[Record], now: datetime, base: str = "") -> str:
    rows = "".join(
        f'<tr class="{_status_class(a.get("status"))}"><td>{esc(a.get("n"))}</td><td>{status_badge(a)}</td>'
        f"<td>{esc(exit_text(a.get('exit_code')))}</td><td>{esc(a.get('pid'))}</td>"
        f"<td>{esc(time_text(a.get('started_at')))}</td><td>{esc(duration_text(a, now))}</td>"
        f"<td>{_output_paths(a, base)}</td></tr>"
        for a in attempts
    )
    return (
        '<table class="attempts"><thead><tr><th>attempt</th><th>status</th><th>exit</th><th>pid</th>'
        f"<th>started</th><th>took</th><th>output</th></tr></thead><tbody>{rows}</tbody></table>"
    )


def _output_paths(attempt: Record, base: str) -> str:
    outputs = attempt.get("outputs") or {}
    return " ".join(
        f'<code title="{esc(short_path(o.get("path"), base))}">{esc(name)} '
        f"{esc(size_text(int(o.get('size') or 0)))}</code>"
        for name, o in sorted(outputs.items(), key=lambda item: (*STREAMS, item[0]).index(item[0]))
    )


def short_path(path: object, base: str) -> str:
    """An output file's path below the run's folder (shown in the header), else whole."""
    text = str(path or "")
    return text[len(base) + 1 :] if base and text.startswith(base.rstrip("/") + "/") else text


def output_tail(stream: str, tail: Tail, base: str = "") -> str:
    """One stream's tail, with its file's path and size, and what was left out."""
    if tail.size == 0 and tail.text == "":
        return f'<p class="note">{esc(stream)}: empty</p>'
    head = (
        f'<div class="out-head"><b>{esc(stream)}</b> {esc(size_text(tail.size))} '
        f"<code>{esc(short_path(tail.path, base))}</code></div>"
    )
    if tail.text is None:
        return f'<div class="out {esc(stream)}">{head}<p class="note">{esc(tail.note)}</p></div>'
    before = (
        f'<p class="note">… {esc(size_text(tail.skipped))} before this; the whole output is in the file</p>'
        if tail.skipped
        else ""
    )
    body = f"<pre>{esc(tail.text)}</pre>" if tail.text else '<p class="note">(empty)</p>'
    return f'<div class="out {esc(stream)}">{head}{before}{body}</div>'


# -- the timeline --------------------------------------------------------------------------


def timeline(run: Record, now: datetime, *, critical: CriticalPath, node_href: NodeHref | None = None) -> str:
    """A Gantt chart: one bar per attempt, in the order they started, critical path marked."""
    nodes: Sequence[Record] = run.get("nodes") or ()
    bars: list[tuple[datetime, datetime, int, Record, Record]] = []
    for i, node in enumerate(nodes):
        for attempt in node.get("attempts") or ():
            span = interval(attempt, now)
            if span is not None:
                bars.append((span[0], span[1], i, node, attempt))
    if not bars:
        return '<section class="timeline"><h2>Timeline</h2><p class="note">nothing has run yet</p></section>'
    bars.sort(key=lambda b: (b[0], b[2]))
    origin = min(parse_time(run.get("started_at")) or bars[0][0], bars[0][0])
    end = max(max(b[1] for b in bars), parse_time(run.get("ended_at")) or origin)
    if _running(run):
        end = max(end, now)
    total = max((end - origin).total_seconds(), 1e-3)
    rows = []
    for start, stop, i, node, attempt in bars:
        left = (start - origin).total_seconds() / total * 100
        width = (stop - start).total_seconds() / total * 100
        crit = " crit" if node["path"] in critical.paths else ""
        several = len(node.get("attempts") or ()) > 1
        label = esc(node["path"]) + (f" #{esc(attempt.get('n'))}" if several else "")
        tip = (
            f"{attempt.get('status')} {exit_text(attempt.get('exit_code'))}, "
            f"{seconds_text((stop - start).total_seconds())} from +{seconds_text((start - origin).total_seconds())}"
        )
        rows.append(
            f'<div class="tl-row{crit}"><a href="{esc(_href(node, i, node_href))}">{label}</a><span>'
            f'<i class="{_status_class(attempt.get("status"))}" style="left:{left:.2f}%;width:{width:.2f}%" '
            f'title="{esc(tip)}"></i></span></div>'
        )
    legend = (
        f"{len(bars)} attempt{'s' if len(bars) != 1 else ''} over {esc(seconds_text(total))}; "
        f'<span class="crit-mark">critical path</span> {esc(seconds_text(critical.seconds))} '
        f"({len(critical.paths)} node{'s' if len(critical.paths) != 1 else ''})"
    )
    return (
        f'<section class="timeline"><h2>Timeline</h2><p class="legend">{legend}</p><div class="tl">'
        f'<div class="tl-axis"><span></span><span class="ticks">{_axis(total)}</span></div>'
        f"{''.join(rows)}</div></section>"
    )


def _axis(total: float) -> str:
    """Tick labels at a round step, ten at most."""
    step = 1e-3
    while total / step > 10:
        for factor in (2, 2.5, 2):  # 1, 2, 5, 10, 20, 50 ...
            step *= factor
            if total / step <= 10:
                break
    ticks = []
    t = 0.0
    while t <= total + 1e-9:
        ticks.append(f'<span style="left:{t / total * 100:.3f}%">{esc(seconds_text(t))}</span>')
        t += step
    return "".join(ticks)


# -- pages ---------------------------------------------------------------------------------


def run_sections(
    run: Record, now: datetime, *, tails: Tails | None = None, node_href: NodeHref | None = None
) -> str:
    """The header, failures, tree and timeline of a run: the report's body and the UI's run page."""
    critical = critical_path(run.get("nodes") or (), now)
    return (
        run_header(run, now)
        + failures(run, node_href)
        + tree(run, now, critical=critical, tails=tails, node_href=node_href)
        + timeline(run, now, critical=critical, node_href=node_href)
    )


def report_document(run: Record, now: datetime, tails: Tails) -> str:
    """The whole report: one file with its CSS and JS inside, that loads nothing from anywhere."""
    script = asset("views.js")
    digest = base64.b64encode(hashlib.sha256(script.encode()).digest()).decode()
    # Belt and braces over the escaping: only this page's own script may run, nothing may load.
    policy = f"default-src 'none'; style-src 'unsafe-inline'; script-src 'sha256-{digest}'"
    title = f"{run.get('workflow')} {run.get('status')} · wtflow report"
    return (
        '<!doctype html><html lang="en"><head><meta charset="utf-8">'
        f'<meta http-equiv="Content-Security-Policy" content="{esc(policy)}">'
        '<meta name="viewport" content="width=device-width, initial-scale=1">'
        f"<title>{esc(title)}</title><style>{asset('views.css')}</style></head>"
        f'<body class="report"><main>{run_sections(run, now, tails=tails)}</main>'
        f"<footer>wtflow report of run {esc(run.get('id'))}</footer><script>{script}</script></body></html>\n"
    )


def run_now(run: Record, clock: Callable[[], datetime]) -> datetime:
    """The moment a view shows a run at: its end once ended, else the clock's now."""
    ended = parse_time(run.get("ended_at"))
    return ended if ended is not None and not _running(run) else clock()
