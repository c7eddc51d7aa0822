"""`mnistlab serve`'s web app on Starlette: the drawing page and the JSON API.

GET /              the page (page.html): draw or upload, the answer as one draws; no request
                   leaves for anywhere but this server (its Content-Security-Policy says so)
POST /api/predict  a picture as the body (image/png, image/jpeg, ... or application/octet-stream)
                   or as the file of a multipart/form-data upload; answers `predict --json`'s
                   object (mnistlab.serve.predictor.Prediction.to_json). ?top=K adds the K
                   likeliest classes, ?input=1 the image the model saw (a PNG data URL).
GET /api/model     the model's summary, classes and test accuracy

Errors are JSON objects {"error": "..."}: 400 a picture that cannot be used, 413 a body over
MAX_BYTES, 415 a content type that is not a picture, 404 and 405 for other paths and methods.
Preprocessing and the model run on Starlette's thread pool, so the event loop keeps accepting
requests; the Predictor serializes the model calls themselves.
"""

from __future__ import annotations

import base64
import socket
from importlib import resources

from starlette.applications import Starlette
from starlette.concurrency import run_in_threadpool
from starlette.datastructures import UploadFile
from starlette.exceptions import HTTPException
from starlette.requests import Request
from starlette.responses import HTMLResponse, JSONResponse
from starlette.routing import Route

from mnistlab.data.images import to_png
from mnistlab.errors import DataError
from mnistlab.serve.predictor import Predictor

#: the largest body /api/predict reads (a phone photo as a JPEG fits)
MAX_BYTES = 5 * 1024 * 1024
#: bodies taken as one encoded picture; PIL recognizes the format from the bytes themselves
IMAGE_TYPES = (
    "image/png",
    "image/jpeg",
    "image/gif",
    "image/bmp",
    "image/webp",
    "image/tiff",
    "application/octet-stream",
)
#: the page may run its own inline script and style, show data: and blob: images, and talk to
#: this server only
CONTENT_SECURITY_POLICY = (
    "default-src 'none'; script-src 'unsafe-inline'; style-src 'unsafe-inline'; "
    "img-src data: blob:; connect-src 'self'; form-action 'none'; base-uri 'none'; "
    "frame-ancestors 'none'"
)
PAGE = resources.files(__package__).joinpath("page.html").read_text(encoding="utf-8")


class RequestError(Exception):
    """A request the API refuses: its HTTP status and a one-line message."""

    def __init__(self, status: int, message: str) -> None:
        super().__init__(message)
        self.status = status


def create_app(predictor: Predictor) -> Starlette:
    """The ASGI app serving `predictor`."""
    app = Starlette(
        routes=[
            Route("/", page, methods=["GET"]),
            Route("/api/predict", predict, methods=["POST"]),
            Route("/api/model", model_info, methods=["GET"]),
        ],
        exception_handlers={HTTPException: _http_error, RequestError: _request_error},
    )
    app.state.predictor = predictor
    return app


async def page(request: Request) -> HTMLResponse:
    return HTMLResponse(PAGE, headers={"Content-Security-Policy": CONTENT_SECURITY_POLICY})


async def model_info(request: Request) -> JSONResponse:
    return JSONResponse(request.app.state.predictor.describe())


async def predict(request: Request) -> JSONResponse:
    predictor: Predictor = request.app.state.predictor
    top = _top(request)
    content_type = request.headers.get("content-type", "").split(";")[0].strip().lower()
    multipart = content_type == "multipart/form-data"
    if not multipart and content_type not in IMAGE_TYPES:
        raise RequestError(
            415,
            f"Content-Type {content_type or '(none)'} is not a picture: send the image itself "
            "(image/png, image/jpeg) or a multipart/form-data upload",
        )
    body = await _read_body(request)
    name = None
    if multipart:
        name, body = await _uploaded_file(request, body)
    try:
        result = await run_in_threadpool(predictor.predict, body, name)
    except DataError as exc:
        raise RequestError(400, str(exc)) from None
    answer = result.to_json(top)
    if request.query_params.get("input") in ("1", "true", "yes"):
        png = base64.b64encode(to_png(result.input)).decode("ascii")
        answer["input"] = f"data:image/png;base64,{png}"
    return JSONResponse(answer)


def _top(request: Request) -> int | None:
    text = request.query_params.get("top")
    if text is None:
        return None
    if not text.isdigit() or int(text) < 1:
        raise RequestError(400, f"top must be a whole number >= 1, got {text!r}")
    return int(text)


async def _read_body(request: Request) -> bytes:
    """The body, refused with 413 as soon as it passes MAX_BYTES (by its Content-Length, or
    while it streams in)."""
    declared = request.headers.get("content-length", "")
    if declared.isdigit() and int(declared) > MAX_BYTES:
        raise RequestError(413, f"the body is {int(declared):,} bytes; the limit is {MAX_BYTES:,}")
    chunks, size = [], 0
    async for chunk in request.stream():
        size += len(chunk)
        if size > MAX_BYTES:
            raise RequestError(413, f"the body passes the limit of {MAX_BYTES:,} bytes")
        chunks.append(chunk)
    return b"".join(chunks)


async def _uploaded_file(request: Request, body: bytes) -> tuple[str | None, bytes]:
    """(file name, bytes) of the multipart body's file; 400 for a body without one."""

    async def replay():  # the body was read already: hand it to the form parser again
        return {"type": "http.request", "body": body, "more_body": False}

    try:
        async with Request(request.scope, replay).form(max_files=1, max_fields=16) as form:
            uploads = [value for _, value in form.multi_items() if isinstance(value, UploadFile)]
            if not uploads:
                raise RequestError(400, "the multipart body holds no file")
            return uploads[0].filename, await uploads[0].read()
    except HTTPException as exc:
        raise RequestError(400, f"not a valid multipart body ({exc.detail})") from None


async def _http_error(request: Request, exc: HTTPException) -> JSONResponse:
    return JSONResponse({"error": exc.detail}, status_code=exc.status_code)


async def _request_error(request: Request, exc: RequestError) -> JSONResponse:
    return JSONResponse({"error": str(exc)}, status_code=exc.status)


def serve(app: Starlette, sock: socket.socket) -> None:
    """Run `app` on uvicorn over the bound socket `sock` until Ctrl-C (or SIGTERM)."""
    import uvicorn  # the server is needed by this command alone

    config = uvicorn.Config(app, log_level="warning", access_log=False)
    uvicorn.Server(config).run(sockets=[sock])
