"""`wtflow ui [--host 127.0.0.1] [--port 8787] [--token [SECRET]]`: the record in a browser."""

from __future__ import annotations

import argparse
import errno
import ipaddress
import secrets
import socket

from wtflow.config import Config, mask_url
from wtflow.errors import UsageError

DEFAULT_HOST, DEFAULT_PORT = "127.0.0.1", 8787
LOCAL_NAMES = ("localhost", "127.0.0.1", "::1")

_EPILOG = """\
examples:
  wtflow ui                            http://127.0.0.1:8787/, for this machine only
  wtflow ui --port 9000
  wtflow ui --host 0.0.0.0 --token     for others too: a token is generated and printed
  wtflow ui --host 10.0.0.5 --token S3CRET

beyond localhost every page needs the token (the printed link carries it). The UI only reads
the record; it needs `pip install 'wtflow[ui]'`."""


def register(subparsers: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    """Add `wtflow ui`."""
    parser = subparsers.add_parser(
        "ui",
        help="a read-only web view of the record: runs, trees, timelines, live output",
        description="Serve a read-only web view of the record: runs, their trees and timelines, "
        "and nodes' output as it is written.",
        epilog=_EPILOG,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument(
        "--host", default=DEFAULT_HOST, help=f"address to listen on (default: {DEFAULT_HOST})"
    )
    parser.add_argument(
        "--port", type=_port, default=DEFAULT_PORT, help=f"port (default: {DEFAULT_PORT}; 0: any free one)"
    )
    parser.add_argument(
        "--token", nargs="?", const="", metavar="SECRET",
        help="require this token on every request; without SECRET one is generated and printed "
        "(needed for any --host beyond localhost)",
    )  # fmt: skip
    parser.set_defaults(handler=cmd_ui)


def _port(raw: str) -> int:
    try:
        value = int(raw)
    except ValueError:
        value = -1
    if not 0 <= value <= 65535:
        raise argparse.ArgumentTypeError(f"{raw!r} is not a port number (0 to 65535)")
    return value


def is_local(host: str) -> bool:
    """Whether `host` is an address only this machine can reach."""
    if host.lower() == "localhost":
        return True
    try:
        return ipaddress.ip_address(host.strip("[]")).is_loopback
    except ValueError:  # a host name: it may resolve to any interface
        return False


def cmd_ui(args: argparse.Namespace, config: Config) -> int:
    host = args.host.strip("[]")
    local = is_local(host)
    if not local and args.token is None:
        raise UsageError(
            f"--host {args.host} serves the record beyond this machine, which needs a token; "
            "add --token (one is generated and printed) or --token SECRET"
        )
    if args.token and not args.token.strip():
        raise UsageError("--token is blank; give a secret, or --token alone to have one generated")
    try:
        import uvicorn

        from wtflow.ui.app import create_app
    except ImportError as e:
        raise UsageError(f"wtflow ui needs {e.name!r}, which is missing; pip install 'wtflow[ui]'") from None
    from wtflow.views.record import RecordReader

    token = (args.token or secrets.token_urlsafe(24)) if args.token is not None else None
    reader = RecordReader.from_config(config)
    sock = _listen(host, args.port)
    port = sock.getsockname()[1]
    shown = f"[{host}]" if ":" in host else host
    url = f"http://{shown}:{port}/"
    app = create_app(reader, token=token, hosts=[*LOCAL_NAMES, host] if local else None)
    print(f"wtflow ui: serving the record {mask_url(reader.url)}, read-only")
    if local:
        print(f"wtflow ui: open {url}" + (f"?token={token}" if token else "") + " (this machine only)")
    else:
        print(
            f"wtflow ui: listening on {host}:{port}, reachable beyond this machine; every request "
            "needs the token, and the connection is not encrypted (put TLS in front for a network you do not trust)"
        )
        print(f"wtflow ui: open {url}?token={token}  (replace {host} with this machine's address if needed)")
    print("wtflow ui: Ctrl-C stops it", flush=True)
    server = uvicorn.Server(
        uvicorn.Config(
            app, log_level="warning", access_log=False, timeout_graceful_shutdown=1, lifespan="off"
        )
    )
    try:
        server.run(sockets=[sock])
    finally:
        sock.close()
        reader.close()
    return 0


def _listen(host: str, port: int) -> socket.socket:
    """A listening socket, made here so a port in use is a one-line error and --port 0 works."""
    try:
        family, kind, proto, _, address = socket.getaddrinfo(host, port, type=socket.SOCK_STREAM)[0]
        sock = socket.socket(family, kind, proto)
    except (OSError, UnicodeError) as e:
        raise UsageError(f"--host {host}: not an address to listen on ({e}); use e.g. 127.0.0.1") from None
    try:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        sock.bind(address)
        sock.listen(128)
    except OSError as e:
        sock.close()
        if e.errno == errno.EADDRNOTAVAIL:
            raise UsageError(
                f"--host {host} is not an address of this machine; use one of its own, or 0.0.0.0 for all"
            ) from None
        raise UsageError(
            f"--host {host} --port {port}: cannot listen there: {e.strerror}; choose another --port (0: any free one)"
        ) from None
    sock.set_inheritable(True)
    return sock
