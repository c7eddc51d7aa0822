"""`mnistlab serve RUN_DIR`: a page to draw on and a JSON API, classifying with a trained run.

The run is loaded and the port bound before the server starts, so that a bad run folder or a
port in use is one line and exit code 2; the address served is printed once it is bound
(--port 0 takes any free port).
"""

from __future__ import annotations

import errno
import socket

from mnistlab.data.preprocess import INVERT, STYLES
from mnistlab.errors import UsageError
from mnistlab.serve.predictor import Predictor


def register(commands) -> None:
    p = commands.add_parser("serve", help="draw and classify in the browser, with a JSON API")
    p.add_argument("run_dir", metavar="RUN_DIR")
    p.add_argument("--host", default="127.0.0.1", help="address to listen on (default 127.0.0.1)")
    p.add_argument("--port", type=int, default=8000, help="default 8000; 0 picks a free port")
    p.add_argument("--preprocess", choices=STYLES, help="override the run's preprocessing")
    p.add_argument("--invert", choices=INVERT, default="auto", help="default auto")
    p.set_defaults(handler=cmd_serve)


def cmd_serve(args) -> int:
    # Starlette and uvicorn are needed by this command alone
    from mnistlab.serve.app import create_app, serve

    if not 0 <= args.port <= 65535:
        raise UsageError(f"--port must be in 0..65535, got {args.port}")
    predictor = Predictor(args.run_dir, preprocess=args.preprocess, invert=args.invert)
    sock = bind(args.host, args.port)
    host, port = sock.getsockname()[:2]
    shown = f"[{host}]" if ":" in host else host
    print(f"serving {args.run_dir} on http://{shown}:{port}/ (Ctrl-C stops)", flush=True)
    serve(create_app(predictor), sock)
    return 0


def bind(host: str, port: int) -> socket.socket:
    """A listening TCP socket on (host, port); UsageError for an address that cannot be used."""
    try:
        family, kind, proto, _, address = socket.getaddrinfo(host, port, type=socket.SOCK_STREAM)[0]
    except socket.gaierror as exc:
        raise UsageError(f"--host {host}: not an address of this machine ({exc})") from None
    sock = socket.socket(family, kind, proto)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    try:
        sock.bind(address)
    except OSError as exc:
        sock.close()
        if exc.errno == errno.EADDRINUSE:
            raise UsageError(
                f"--port {port}: {host}:{port} is in use; choose another port (--port 0 takes "
                "any free one)"
            ) from None
        raise UsageError(f"--host {host} --port {port}: cannot listen there ({exc})") from None
    sock.listen(128)
    sock.set_inheritable(True)
    return sock


__all__ = ["register"]
