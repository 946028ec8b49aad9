"""The pages of `wtflow ui`, server-rendered from the record, never writing to it.

    /                                    runs, newest first (?workflow=, ?status=)
    /runs/<id>                           a run: header, tree, timeline (as in the report)
    /runs/<id>/nodes/<path>              a node: its attempts, stdout and stderr (?attempt=N)
    /runs/<id>/stream/<path>?attempt=N   Server-Sent Events: what a running attempt writes
    /runs/<id>/raw/<n>/<stream>/<path>   one output file as text
    /static/<name>                       the CSS and JS

Pages of runs still going fetch themselves again (ui.js) until the record says they ended;
a running node's output comes as events, read from its files as they grow.
"""

from __future__ import annotations

import asyncio
import codecs
import json
import secrets
from collections.abc import AsyncIterator, Callable, Sequence
from datetime import UTC, datetime
from typing import Any
from urllib.parse import quote, urlencode

from starlette.applications import Starlette
from starlette.concurrency import run_in_threadpool
from starlette.datastructures import URL, Headers
from starlette.requests import Request
from starlette.responses import (
    FileResponse,
    HTMLResponse,
    PlainTextResponse,
    RedirectResponse,
    Response,
    StreamingResponse,
)
from starlette.routing import Route
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from wtflow.config import mask_url
from wtflow.errors import LookupFailed, RecorderError
from wtflow.status import Status, exit_text
from wtflow.views.html import (
    asset,
    attempts_table,
    duration_text,
    esc,
    run_now,
    run_sections,
    size_text,
    status_badge,
)
from wtflow.views.record import RecordReader
from wtflow.views.tails import STREAMS, clean_text, read_tail, whole_characters
from wtflow.views.timing import Record, time_text

TOKEN_COOKIE = "wtflow_ui_token"
POLL = 0.25  # seconds between looks at a running node's files and record
PAGE_OUTPUT = 512 * 1024  # output shown on a node's page; the rest is one click away (raw)
STREAM_CHUNK = 256 * 1024
ASSETS = {"views.css": "text/css", "views.js": "text/javascript", "ui.js": "text/javascript"}
HEADERS = {
    # Node output is someone else's text: even if some got through unescaped, no script but
    # ours runs, and nothing is loaded from elsewhere.
    "content-security-policy": "default-src 'self'; style-src 'self' 'unsafe-inline'; img-src 'self' data:; frame-ancestors 'none'",
    "x-content-type-options": "nosniff",
    "referrer-policy": "no-referrer",  # a ?token= must not leak to links followed from a page
}

Clock = Callable[[], datetime]


def run_href(run_id: str) -> str:
    return f"/runs/{quote(run_id)}"


def node_href(run_id: str, path: str, **query: object) -> str:
    tail = f"?{urlencode(query)}" if query else ""
    return f"/runs/{quote(run_id)}/nodes/{quote(path)}{tail}"


def create_app(
    reader: RecordReader,
    *,
    token: str | None = None,
    hosts: Sequence[str] | None = None,
    clock: Clock = lambda: datetime.now(UTC),
) -> ASGIApp:
    """The app over `reader`; with `token`, every request must carry it; with `hosts`, only
    requests addressed to one of those names are answered (a page elsewhere cannot reach a
    localhost UI through DNS rebinding)."""
    pages = _Pages(reader, clock)
    app = Starlette(
        routes=[
            Route("/", pages.runs),
            Route("/static/{name}", pages.static),
            Route("/runs/{run_id}", pages.run),
            Route("/runs/{run_id}/nodes/{path:path}", pages.node),
            Route("/runs/{run_id}/stream/{path:path}", pages.stream),
            Route("/runs/{run_id}/raw/{n:int}/{stream}/{path:path}", pages.raw),
        ],
        exception_handlers={LookupFailed: pages.not_found, RecorderError: pages.unavailable},
    )
    return Guard(app, token=token, hosts=hosts)


class _Pages:
    def __init__(self, reader: RecordReader, clock: Clock) -> None:
        self.reader = reader
        self.clock = clock

    async def runs(self, request: Request) -> Response:
        workflow = request.query_params.get("workflow") or None
        status = request.query_params.get("status") or None
        if status is not None and status not in {s.value for s in Status}:
            status = None
        rows = await run_in_threadpool(self.reader.runs, workflow=workflow, status=status, limit=100)
        options = "".join(
            f'<option value="{s}"{" selected" if s == status else ""}>{s}</option>' for s in Status
        )
        body = (
            "<h1>Runs</h1>"
            '<form class="filters" method="get" action="/">'
            f'<label>workflow <input name="workflow" value="{esc(workflow or "")}" size="18"></label>'
            f'<label>status <select name="status"><option value="">any</option>{options}</select></label>'
            '<button type="submit">Filter</button> <a href="/">clear</a></form>'
            f'<div data-live data-final="0">{self._runs_table(rows, filtered=bool(workflow or status))}</div>'
        )
        return _page("runs · wtflow", body)

    def _runs_table(self, rows: list[dict[str, Any]], *, filtered: bool) -> str:
        if not rows:
            if not self.reader.exists():
                return f'<p class="note">no runs recorded yet in {esc(mask_url(self.reader.url))}</p>'
            return f'<p class="note">no runs{" match the filters" if filtered else " recorded yet"}</p>'
        now = self.clock()
        lines = []
        for run in rows:
            counts = ", ".join(f"{n} {esc(s)}" for s, n in sorted((run.get("nodes") or {}).items()))
            lines.append(
                f'<tr class="run"><td><a href="{esc(run_href(run["id"]))}"><code>{esc(run["id"][:8])}</code></a>'
                f"</td><td>{esc(run['workflow'])}</td><td>{status_badge(run)}</td>"
                f"<td>{esc(time_text(run.get('started_at')))}</td><td>{esc(duration_text(run, now))}</td>"
                f"<td>{counts}</td></tr>"
            )
        return (
            '<table class="runs"><thead><tr><th>id</th><th>workflow</th><th>status</th><th>started</th>'
            f"<th>took</th><th>nodes</th></tr></thead><tbody>{''.join(lines)}</tbody></table>"
        )

    async def run(self, request: Request) -> Response:
        ref = request.path_params["run_id"]
        run = await run_in_threadpool(self.reader.run, ref)
        if run["id"] != ref:  # a prefix or `last`: send the reader to the link that stays
            return RedirectResponse(run_href(run["id"]), status_code=303)
        now = run_now(run, self.clock)
        final = run["status"] != Status.RUNNING
        # A big run's page is megabytes: fetch it again less often the bigger it is.
        every = min(10_000, max(1_500, len(run["nodes"]) * 2))
        body = (
            f'<div data-live data-final="{int(final)}" data-poll="{every}">'
            + run_sections(run, now, node_href=lambda n: node_href(run["id"], n["path"]))
            + "</div>"
        )
        return _page(f"{run['workflow']} {run['status']} · wtflow", body)

    async def node(self, request: Request) -> Response:
        ref, path = request.path_params["run_id"], request.path_params["path"]
        run = await run_in_threadpool(self.reader.run, ref)
        if run["id"] != ref:
            return RedirectResponse(node_href(run["id"], path, **request.query_params), status_code=303)
        node = next((n for n in run["nodes"] if n["path"] == path), None)
        if node is None:
            raise LookupFailed(f"run {ref[:8]} has no node {path!r}")
        attempts = node.get("attempts") or []
        chosen = _chosen_attempt(attempts, request.query_params.get("attempt"))
        now = run_now(run, self.clock)
        final = Status(node["status"]).is_final or Status(run["status"]).is_final
        crumbs = (
            f'<p><a href="/">runs</a> &rsaquo; <a href="{esc(run_href(run["id"]))}">{esc(run["workflow"])} '
            f"<code>{esc(run['id'][:8])}</code></a> &rsaquo; {esc(path)}</p>"
        )
        code = exit_text(node.get("exit_code"))
        live = (
            f'<div data-live data-final="{int(final)}" data-reload="{len(attempts)}">'
            f"<h1>{esc(node['name'])} {status_badge(node)} <span class=exit>{esc(code)}</span> "
            f'<span class="dur">{esc(duration_text(node, now))}</span></h1>'
            + (
                f'<p class="exec"><span class="kind">{esc(node["kind"])}</span> '
                f"<code>{esc(node.get('executes'))}</code></p>"
                if node.get("kind")
                else ""
            )
            + (attempts_table(attempts, now) if attempts else '<p class="note">it has not run</p>')
            + "</div>"
        )
        return _page(f"{path} · wtflow", crumbs + live + self._outputs(run["id"], path, attempts, chosen))

    def _outputs(self, run_id: str, path: str, attempts: list[Record], chosen: Record | None) -> str:
        if chosen is None:
            return ""
        n = chosen["n"]
        picks = " ".join(
            f"<b>{a['n']}</b>"
            if a["n"] == n
            else f'<a href="{esc(node_href(run_id, path, attempt=a["n"]))}">{a["n"]}</a>'
            for a in attempts
        )
        parts = [
            f"<section class=outputs><p>attempt {picks}</p>"
            if len(attempts) > 1
            else "<section class=outputs>"
        ]
        offsets: dict[str, int] = {}
        for stream in STREAMS:
            output = (chosen.get("outputs") or {}).get(stream)
            if output is None:
                continue
            tail = read_tail(output["path"], max_bytes=PAGE_OUTPUT, max_lines=1 << 30)
            offsets[stream] = tail.end
            raw = f"/runs/{quote(run_id)}/raw/{n}/{stream}/{quote(path)}"
            skipped = (
                f'<p class="note">… the first {esc(size_text(tail.skipped))} are in the <a href="{raw}">whole file</a></p>'
                if tail.skipped
                else ""
            )
            parts.append(
                f'<h2>{stream} <span class="note">{esc(size_text(tail.size))} <code>{esc(output["path"])}</code> '
                f'<a href="{raw}">raw</a></span></h2>{skipped}'
                f'<pre class="log {stream}" id="out-{stream}">{esc(tail.text or "")}</pre>'
                + (f'<p class="note">{esc(tail.note)}</p>' if tail.note else "")
            )
        if chosen.get("status") == Status.RUNNING and offsets:
            url = f"/runs/{quote(run_id)}/stream/{quote(path)}?{urlencode({'attempt': n, **offsets})}"
            parts.append(
                f'<p class="live-dot" data-sse="{esc(url)}">● following the output as it is written</p>'
            )
        parts.append("</section>")
        return "".join(parts)

    async def stream(self, request: Request) -> Response:
        run_id, path = request.path_params["run_id"], request.path_params["path"]
        try:
            n = int(request.query_params["attempt"])
            offsets = {s: int(request.query_params.get(s, 0)) for s in STREAMS}
        except (KeyError, ValueError):
            return PlainTextResponse("give ?attempt=N and the offsets to start from", status_code=400)
        return StreamingResponse(
            self._follow(run_id, path, n, offsets),
            media_type="text/event-stream",
            headers={"cache-control": "no-store"},
        )

    async def _follow(self, run_id: str, path: str, n: int, offsets: dict[str, int]) -> AsyncIterator[str]:
        """Events with what the attempt writes, until it has ended and its files are read to the end."""
        decoders = {s: codecs.getincrementaldecoder("utf-8")(errors="replace") for s in STREAMS}
        while True:
            node = await run_in_threadpool(self.reader.node, run_id, path)
            attempt = next((a for a in (node or {}).get("attempts", []) if a["n"] == n), None)
            ended = attempt is None or Status(attempt["status"]).is_final
            for stream in STREAMS:
                output = ((attempt or {}).get("outputs") or {}).get(stream)
                if output is None:
                    continue
                while data := await run_in_threadpool(_read_from, output["path"], offsets[stream]):
                    offsets[stream] += len(data)
                    text = clean_text(decoders[stream].decode(data))
                    if text:
                        yield f"event: output\ndata: {json.dumps({'stream': stream, 'text': text})}\n\n"
            if ended:  # read after the end was seen: nothing more will come
                yield f"event: end\ndata: {json.dumps({'status': (attempt or {}).get('status')})}\n\n"
                return
            await asyncio.sleep(POLL)

    async def raw(self, request: Request) -> Response:
        run_id, path = request.path_params["run_id"], request.path_params["path"]
        n, stream = request.path_params["n"], request.path_params["stream"]
        node = await run_in_threadpool(self.reader.node, run_id, path)
        attempt = next((a for a in (node or {}).get("attempts", []) if a["n"] == n), None)
        output = ((attempt or {}).get("outputs") or {}).get(stream)
        if output is None:
            raise LookupFailed(f"run {run_id[:8]} node {path!r} has no {stream} for attempt {n}")
        return FileResponse(
            output["path"], media_type="text/plain; charset=utf-8", content_disposition_type="inline"
        )

    async def static(self, request: Request) -> Response:
        name = request.path_params["name"]
        if name not in ASSETS:
            return PlainTextResponse("not found", status_code=404)
        return Response(asset(name), media_type=ASSETS[name], headers={"cache-control": "no-cache"})

    async def not_found(self, request: Request, exc: Exception) -> Response:
        return _page("not found · wtflow", f"<h1>Not found</h1><p>{esc(exc)}</p>", status=404)

    async def unavailable(self, request: Request, exc: Exception) -> Response:
        return _page(
            "record unavailable · wtflow", f"<h1>The record cannot be read</h1><p>{esc(exc)}</p>", status=503
        )


def _chosen_attempt(attempts: list[Record], raw: str | None) -> Record | None:
    if raw is not None:
        for attempt in attempts:
            if str(attempt["n"]) == raw:
                return attempt
        raise LookupFailed(f"there is no attempt {raw!r}; it ran {len(attempts)}")
    return attempts[-1] if attempts else None


def _read_from(path: str, offset: int) -> bytes:
    try:
        with open(path, "rb") as f:
            f.seek(offset)
            return whole_characters(f.read(STREAM_CHUNK))
    except FileNotFoundError:
        return b""


def _page(title: str, body: str, *, status: int = 200) -> HTMLResponse:
    return HTMLResponse(
        '<!doctype html><html lang="en"><head><meta charset="utf-8">'
        '<meta name="viewport" content="width=device-width, initial-scale=1"><link rel="icon" href="data:,">'
        f'<title>{esc(title)}</title><link rel="stylesheet" href="/static/views.css"></head>'
        f'<body><nav class="top"><a href="/">wtflow</a></nav><main>{body}</main>'
        '<script src="/static/views.js"></script><script src="/static/ui.js"></script></body></html>',
        status_code=status,
    )


class Guard:
    """Answers only requests for our host names that carry the token (when there is one), and
    adds the security headers to every response."""

    def __init__(self, app: ASGIApp, *, token: str | None, hosts: Sequence[str] | None) -> None:
        self.app = app
        self.token = token
        self.hosts = {h.lower() for h in hosts} if hosts is not None else None

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        headers = Headers(scope=scope)
        if self.hosts is not None and _host_name(headers.get("host", "")) not in self.hosts:
            await PlainTextResponse("wtflow ui: unknown host name", status_code=400)(scope, receive, send)
            return
        if self.token is not None:
            request = Request(scope)
            given = request.query_params.get("token")
            if given is not None and self._valid(given):
                # Trade the link's token for a cookie, and drop it from the address bar.
                url = URL(scope=scope).remove_query_params("token")
                target = url.path + (f"?{url.query}" if url.query else "")
                response = RedirectResponse(target, status_code=303)
                response.set_cookie(TOKEN_COOKIE, given, httponly=True, samesite="strict")
                await response(scope, receive, send)
                return
            auth = headers.get("authorization", "")
            carried = request.cookies.get(TOKEN_COOKIE) or (
                auth[7:] if auth.lower().startswith("bearer ") else ""
            )
            if not self._valid(carried):
                await PlainTextResponse(
                    "wtflow ui: this page needs the token `wtflow ui` printed when it started; "
                    "open the link it printed (…/?token=…)",
                    status_code=401,
                )(scope, receive, send)
                return

        async def with_headers(message: Message) -> None:
            if message["type"] == "http.response.start":
                message.setdefault("headers", [])
                message["headers"] = [
                    *message["headers"],
                    *((k.encode(), v.encode()) for k, v in HEADERS.items()),
                ]
            await send(message)

        await self.app(scope, receive, with_headers)

    def _valid(self, given: str) -> bool:
        assert self.token is not None
        return secrets.compare_digest(given.encode(), self.token.encode())


def _host_name(header: str) -> str:
    """The name in a Host header, without the port ([::1]:8787 -> ::1)."""
    header = header.strip().lower()
    if header.startswith("["):
        return header[1 : header.find("]")] if "]" in header else header
    return header.rsplit(":", 1)[0] if header.count(":") == 1 else header
