"""``tinyfer serve``: the recognizer as an HTTP service (FastAPI on uvicorn), offline.

Endpoints (OpenAPI page at ``/docs``): ``POST /v1/predict`` (multipart images or one raw image
body; the records of ``tinyfer predict --format json``), ``POST /v1/predict/video`` (NDJSON,
one line per analysed frame), ``WS /v1/stream`` (live frames), ``GET /v1/models``,
``GET /healthz``, ``GET /readyz``, and the page at ``/``.

Limits: a request over ``max_bytes`` is refused with 413 while it arrives (before any decoding),
an image over ``max_pixels`` with 413 from its header; inference runs on a bounded pool of
worker threads, and a request that finds every worker and queue slot taken gets 503 with
``Retry-After`` at once instead of waiting without bound; a request past ``timeout`` seconds
gets 504. Uploads stay in memory, never on disk (a video is decoded from an in-memory file).
With ``api_key`` every endpoint that sees an image or the model needs it (``X-API-Key`` or
``Authorization: Bearer``; ``?api_key=`` on the WebSocket, where a browser cannot set headers),
compared in constant time; the health checks and the static pages stay open. A bad upload gets a
4xx JSON ``{"error": ...}`` naming the problem, never a traceback.
"""

import asyncio
import hmac
import json
import logging
import os
import threading
import time
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from typing import Literal

import uvicorn
from fastapi import Depends, FastAPI, Query, Request, WebSocket, WebSocketDisconnect
from fastapi.exceptions import RequestValidationError
from fastapi.middleware.cors import CORSMiddleware
from fastapi.responses import HTMLResponse, JSONResponse, StreamingResponse
from starlette.exceptions import HTTPException
from starlette.formparsers import MultiPartParser

from tinyfer.core.io import load_image
from tinyfer.core.kinds import DETECTORS
from tinyfer.core.model_files import ASSETS, resolve_model_file
from tinyfer.core.priors import PriorSpec
from tinyfer.errors import ImageTooLarge, TinyferError, VideoError
from tinyfer.inference.batch import Record
from tinyfer.inference.predict import Recognizer
from tinyfer.inference.track import Follower, TrackOptions

log = logging.getLogger(__name__)

# The service finds faces in what it is sent: every detector but "none".
Detector = Literal[tuple(n for n, d in DETECTORS.items() if d.finds_faces)]  # type: ignore[valid-type]

MB = 1024 * 1024


@dataclass
class ServeConfig:
    """How the service runs; ``tinyfer serve`` builds it from its options."""

    model: str | None = None  # a bundled model's name, a run directory or a model file
    prior: PriorSpec | None = None  # the class prior of the predictions (None: the default)
    api_key: str | None = None
    workers: int = 2  # inference threads
    queue: int = 8  # requests that may wait for a worker before 503
    max_bytes: int = 20 * MB
    max_pixels: int = 50_000_000
    timeout: float = 30.0  # seconds per request
    max_video_frames: int = 10_000
    max_files: int = 64  # images in one request
    cors: list[str] = field(default_factory=list)  # allowed origins; empty: CORS off


class Busy(Exception):
    """Every worker and queue slot is taken."""


class Pool:
    """A bounded pool of inference threads; each thread keeps its own recognizers (one per
    detector and minimum face size), made on first use."""

    def __init__(self, cfg: ServeConfig):
        self.cfg = cfg
        self.executor = ThreadPoolExecutor(cfg.workers, thread_name_prefix="tinyfer-infer")
        self.slots = threading.BoundedSemaphore(cfg.workers + cfg.queue)
        self.local = threading.local()
        # Loads (and checks) the model and its prior now.
        self.default = Recognizer(cfg.model, threads=1, prior=cfg.prior)

    def recognizer(self, detector: str, min_face: float | None) -> Recognizer:
        made = self.local.__dict__.setdefault("made", {})
        key = (detector, min_face)
        if key not in made:
            made[key] = Recognizer(self.cfg.model, detector=detector, min_face=min_face,
                                   threads=1, prior=self.cfg.prior)  # fmt: skip
        return made[key]

    async def run(self, fn, *args):
        """``fn(*args)`` on a worker; Busy when full, TimeoutError past the timeout."""
        if not self.slots.acquire(blocking=False):
            raise Busy
        try:
            future = self.executor.submit(fn, *args)
        except BaseException:
            self.slots.release()
            raise
        # The slot is freed when the work ends, even after a timeout gave up on it.
        future.add_done_callback(lambda _: self.slots.release())
        return await asyncio.wait_for(asyncio.wrap_future(future), self.cfg.timeout)


class SizeLimit:
    """ASGI middleware: 413 for a request body over ``max_bytes``, from its Content-Length
    before reading, or as soon as a body without one passes the limit."""

    def __init__(self, app, max_bytes: int):
        self.app, self.max_bytes = app, max_bytes

    async def __call__(self, scope, receive, send):
        if scope["type"] != "http":
            return await self.app(scope, receive, send)
        length = dict(scope.get("headers", [])).get(b"content-length")
        if length is not None and length.isdigit() and int(length) > self.max_bytes:
            return await _send_json(send, 413, self._message())
        seen = 0

        async def counted():
            nonlocal seen
            message = await receive()
            seen += len(message.get("body", b""))
            if seen > self.max_bytes:
                raise _TooBig
            return message

        try:
            await self.app(scope, counted, send)
        except _TooBig:
            await _send_json(send, 413, self._message())

    def _message(self) -> dict:
        return {"error": f"request body over the limit of {self.max_bytes / MB:g} MB"}


class _TooBig(Exception):
    pass


async def _send_json(send, status: int, body: dict) -> None:
    data = json.dumps(body).encode()
    await send({"type": "http.response.start", "status": status,
                "headers": [(b"content-type", b"application/json"),
                            (b"content-length", str(len(data)).encode())]})  # fmt: skip
    await send({"type": "http.response.body", "body": data})


def _records(rec: Recognizer, named: list[tuple[str, bytes]], max_pixels: int, top_k: int):
    """``predict --format json``'s record per image; a bad image raises naming itself. The
    pixels of all the request's images together are held to ``max_pixels`` (a 20 MB body can
    hold hundreds of small files that each decode to 50 megapixels)."""
    images, total = [], 0
    for name, data in named:
        images.append(load_image(data, max_pixels=max_pixels - total, name=name))
        total += images[-1].shape[0] * images[-1].shape[1]
    out = []
    for (name, _), faces in zip(named, rec.predict_batch(images)):
        record = Record(name, faces).to_dict()
        if top_k:
            for face in record["faces"]:
                top = sorted(face["probabilities"].items(), key=lambda kv: -kv[1])[:top_k]
                face["top"] = [{"label": k, "probability": v} for k, v in top]
        out.append(record)
    return out


def _video_lines(pool: "Pool", detector: str, min_face: float | None, data: bytes, every: int,
                 max_frames: int) -> Iterator[str]:  # fmt: skip
    """One JSON line per analysed frame of an in-memory video (a memfd: never on disk); runs
    on the worker threads, one ``next`` at a time."""
    rec = pool.recognizer(detector, min_face)
    fd = os.memfd_create("tinyfer-upload")
    try:
        os.write(fd, data)
        frames = rec.predict_video(f"/proc/self/fd/{fd}", every=every)
        for _, frame in zip(range(max_frames), frames):
            yield json.dumps(Record("upload", frame.faces, frame.index, frame.time).to_dict())
    finally:
        os.close(fd)


def create_app(cfg: ServeConfig | None = None) -> FastAPI:
    """The FastAPI application (the model is loaded here, so a bad model fails at start)."""
    cfg = cfg or ServeConfig()
    # Starlette spools an upload above this size to a temporary file; the request is already
    # capped at max_bytes, so it may stay in memory whole.
    MultiPartParser.spool_max_size = max(MultiPartParser.spool_max_size, cfg.max_bytes + 1)
    pool = Pool(cfg)
    app = FastAPI(title="tinyfer", version="1", description="Faces found, expressions named.")
    app.state.pool = pool
    app.add_middleware(SizeLimit, max_bytes=cfg.max_bytes)
    if cfg.cors:
        app.add_middleware(CORSMiddleware, allow_origins=cfg.cors, allow_methods=["*"],
                           allow_headers=["*"])  # fmt: skip

    def check_key(request: Request) -> None:
        if not key_ok(cfg, request.headers, {}):
            raise HTTPException(
                401, "missing or wrong API key (X-API-Key or Authorization: Bearer)"
            )

    _add_error_answers(app, cfg)
    _add_status_routes(app, pool, resolve_model_file(cfg.model), Depends(check_key))
    _add_predict_routes(app, pool, cfg, Depends(check_key))
    _add_stream(app, pool, cfg)
    return app


def key_ok(cfg: ServeConfig, headers, query) -> bool:
    """Whether a request carries the API key (always, when the service has none)."""
    if cfg.api_key is None:
        return True
    given = headers.get("x-api-key", "")
    bearer = headers.get("authorization", "")
    if bearer.lower().startswith("bearer "):
        given = given or bearer[7:]
    given = given or query.get("api_key", "")  # a browser's WebSocket cannot set headers
    return hmac.compare_digest(given.encode(), cfg.api_key.encode())


def _add_error_answers(app: FastAPI, cfg: ServeConfig) -> None:
    """Every failure answered as ``{"error": ...}`` with its status."""

    @app.exception_handler(TinyferError)
    async def _bad_input(request, exc: TinyferError):
        status = 413 if isinstance(exc, ImageTooLarge) else 422
        return JSONResponse({"error": str(exc)}, status_code=status)

    @app.exception_handler(HTTPException)
    async def _http(request, exc: HTTPException):
        return JSONResponse({"error": str(exc.detail)}, status_code=exc.status_code,
                            headers=exc.headers)  # fmt: skip

    @app.exception_handler(RequestValidationError)
    async def _bad_parameter(request, exc: RequestValidationError):
        where = "; ".join(f"{'.'.join(map(str, e['loc']))}: {e['msg']}" for e in exc.errors())
        return JSONResponse({"error": where}, status_code=422)

    @app.exception_handler(Busy)
    async def _busy(request, exc):
        return JSONResponse({"error": "every inference worker is busy; retry shortly"},
                            status_code=503, headers={"Retry-After": "1"})  # fmt: skip

    @app.exception_handler(TimeoutError)
    async def _timeout(request, exc):
        return JSONResponse({"error": f"the request took over {cfg.timeout:g} s"},
                            status_code=504)  # fmt: skip

    @app.exception_handler(Exception)
    async def _unexpected(request, exc):
        return JSONResponse({"error": f"internal error ({type(exc).__name__})"}, status_code=500)


def _add_status_routes(app: FastAPI, pool: Pool, model_file, check_key) -> None:
    """The page, the probes and the model's description."""
    cfg = pool.cfg
    page = (ASSETS / "web" / "index.html").read_text()

    @app.get("/", response_class=HTMLResponse, include_in_schema=False)
    async def index() -> str:
        return page

    @app.get("/healthz")
    async def healthz() -> dict:
        """The process answers."""
        return {"status": "ok"}

    @app.get("/readyz")
    async def readyz() -> dict:
        """The model is loaded and workers are up."""
        return {"ready": True, "model": model_file.name, "workers": cfg.workers}

    @app.get("/v1/models", dependencies=[check_key])
    async def models() -> dict:
        """The served model: labels, input size, how faces are cut, what its file records."""
        rec = pool.default
        clf = rec.classifier
        return {"model": model_file.name, "labels": list(rec.labels), "img_size": rec.img_size,
                "geometry": rec.cut.geometry, "tta": getattr(clf, "tta", "none"),
                "metrics": getattr(clf, "metrics", {})}  # fmt: skip


async def _uploads(request: Request, cfg: ServeConfig) -> list[tuple[str, bytes]]:
    """The images of a request: multipart files, or the whole body as one."""
    kind = request.headers.get("content-type", "")
    if kind.startswith("multipart/form-data"):
        form = await request.form()
        files = [(v.filename or k, await v.read()) for k, v in form.multi_items()
                 if hasattr(v, "read")]  # fmt: skip
    else:
        files = [("upload", await request.body())]
    files = [(name, data) for name, data in files if data]
    if not files:
        raise HTTPException(
            400, "no image in the request (send multipart files or a raw image body)"
        )
    if len(files) > cfg.max_files:
        raise HTTPException(413, f"{len(files)} images in one request; at most {cfg.max_files}")
    return files


def _add_predict_routes(app: FastAPI, pool: Pool, cfg: ServeConfig, check_key) -> None:
    """Images and uploaded clips."""

    @app.post("/v1/predict", dependencies=[check_key])
    async def predict(
        request: Request,
        detector: Detector = "mtcnn",
        min_face: float | None = Query(None, gt=0, lt=1),
        top_k: int = Query(0, ge=0, le=10),
    ) -> dict:
        """Faces and expressions of one or more images (multipart ``files``, or the body)."""
        files = await _uploads(request, cfg)

        def work():
            return _records(pool.recognizer(detector, min_face), files, cfg.max_pixels, top_k)

        return {"results": await pool.run(work)}

    @app.post("/v1/predict/video", dependencies=[check_key])
    async def predict_video(
        request: Request,
        every: int = Query(1, ge=1),
        max_frames: int = Query(300, ge=1),
        detector: Detector = "mtcnn",
        min_face: float | None = Query(None, gt=0, lt=1),
    ):
        """An uploaded clip, streamed back as NDJSON: one line per analysed frame."""
        (_, data), *_ = await _uploads(request, cfg)
        lines = _video_lines(pool, detector, min_face, data, every,
                             min(max_frames, cfg.max_video_frames))  # fmt: skip
        try:  # the first frame now, so that an unreadable video is a 422, not a broken stream
            first = await pool.run(next, lines, None)
        except VideoError as exc:
            raise HTTPException(422, str(exc)) from None

        async def stream():
            line = first
            try:
                while line is not None:
                    yield line + "\n"
                    line = await pool.run(next, lines, None)
            finally:
                lines.close()  # a client that left: the in-memory file is freed

        return StreamingResponse(stream(), media_type="application/x-ndjson")


def _add_stream(app: FastAPI, pool: Pool, cfg: ServeConfig) -> None:
    """The live stream of the page's webcam mode."""

    @app.websocket("/v1/stream")
    async def stream(socket: WebSocket, detector: Detector = "mtcnn"):
        """Live frames: each binary message an encoded image, each answer its faces as JSON
        (``{"faces": [...]}`` or ``{"error": ...}``), one at a time. Faces are tracked over
        the connection's frames (a ``track`` id each, probabilities smoothed over the last
        quarter second of arrival time)."""
        if not key_ok(cfg, socket.headers, socket.query_params):
            await socket.close(code=1008, reason="missing or wrong API key")
            return
        await socket.accept()
        follower = Follower(pool.recognizer(detector, None), TrackOptions())
        one_at_a_time = threading.Lock()  # a frame that timed out may still be running
        start = time.monotonic()

        def faces_of(data: bytes, at: float) -> list:
            image = load_image(data, max_pixels=cfg.max_pixels, name="frame")
            with one_at_a_time:
                faces = follower.step(image, at, pool.recognizer(detector, None))
            return [face.to_dict() for face in faces]

        try:
            while True:
                data = await socket.receive_bytes()
                if len(data) > cfg.max_bytes:
                    await socket.send_json({"error": f"frame over the limit of "
                                                     f"{cfg.max_bytes / MB:g} MB"})  # fmt: skip
                    continue
                try:
                    at = time.monotonic() - start
                    answer = {"faces": await pool.run(faces_of, data, at)}
                except TinyferError as exc:
                    answer = {"error": str(exc)}
                except Busy:
                    answer = {"error": "every inference worker is busy; frame dropped"}
                except TimeoutError:
                    answer = {"error": f"the frame took over {cfg.timeout:g} s"}
                await socket.send_json(answer)
        except WebSocketDisconnect:
            return


def serve(cfg: ServeConfig, host: str = "127.0.0.1", port: int = 8000) -> None:
    """Run the service until interrupted; says where it listens once the model is loaded."""
    app = create_app(cfg)
    log.info(describe(cfg, host, port))
    uvicorn.run(app, host=host, port=port, log_level="info")


def describe(cfg: ServeConfig, host: str, port: int) -> str:
    """The start-up line: where it listens and what that means."""
    where = ("only this machine can reach it" if host in ("127.0.0.1", "localhost", "::1")
             else "other machines can reach it")  # fmt: skip
    key = "an API key is required" if cfg.api_key else "no API key"
    return f"tinyfer serve on http://{host}:{port} ({where}; {key}); API docs at /docs"
