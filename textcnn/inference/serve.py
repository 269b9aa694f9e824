"""HTTP service: FastAPI on uvicorn, listening on 127.0.0.1 unless told otherwise.

    POST /predict   {"texts": [...], "top_k": 2, "explain": false, "top_ngrams": 5}
                    → {"predictions": [{"label": …, "probabilities": {…}, "explanation": {…}}]}
                      (a multi-label model: "labels": [...] instead of "label"; with "min_precision": 0.95
                      or "min_confidence": 0.8, "abstained": true and "label": null below it)
    GET  /health    → {"status": "ok"}
    GET  /metadata  → labels, backend, architecture, model size, limits, the model card's summary
    GET  /          → a page to try the model in a browser (textcnn.inference.page)
    POST /predict-file?filename=texts.csv  → a file's predictions as CSV (the page's upload)

Limits keep one request from monopolising the server: more than ``max_texts`` texts or a text
longer than ``max_chars`` characters is refused with 413, a body larger than those limits allow
with 413 before it is read; malformed JSON (invalid UTF-8 included), wrong types and texts holding
lone surrogates (``"\ud800"``: not Unicode text) give 422. A chunked body is counted as it
arrives (413 once past the limit); slow clients are cut off (headers within 10 s, the body within
30 s of them: 408, idle keep-alive connections after 5 s), and a prediction not done 30 s after
its request arrived (``--request-timeout``; a busy server) gets 503 with ``Retry-After``. Every error body is
``{"detail": "one line saying what is wrong"}``. Predictions run in a thread pool (anyio's, as for
FastAPI's plain handlers): the predictor is shared by those threads.
"""

from __future__ import annotations

import asyncio
import logging
import sys
import threading
from typing import Any, Optional

from textcnn.errors import UserInputError
from textcnn.inference.model_card import card_summary
from textcnn.inference.predictor import BasePredictor, NonFiniteScoresError, Predictor, first_surrogate

try:
    import anyio
    import uvicorn
    from fastapi import FastAPI, HTTPException, Request
    from fastapi.exceptions import RequestValidationError
    from fastapi.responses import JSONResponse
    from starlette.exceptions import HTTPException as StarletteHTTPException
    from pydantic import BaseModel, ConfigDict, Field

    from textcnn.inference.page import add_page, announce_page
    from textcnn.inference.slow_clients import HeaderDeadline
except ImportError:  # pragma: no cover - depends on the installed extras
    raise UserInputError("serving needs fastapi and uvicorn; pip install 'textcnn[serve]'") from None

log = logging.getLogger(__name__)

DEFAULT_HOST, DEFAULT_PORT = "127.0.0.1", 8000
DEFAULT_MAX_TEXTS, DEFAULT_MAX_CHARS = 64, 5000
JSON_OVERHEAD = 1024  # bytes of JSON around the texts, plus escaping (below)
ESCAPED_BYTES_PER_CHAR = 12  # "\\ud83d\\ude00": one character (code point) of a text, JSON-escaped as a surrogate pair
# Slow clients: a connection must send a request's headers within HEADER_TIMEOUT_S of opening (or of
# its previous response), and the whole body within BODY_TIMEOUT_S of the headers; an idle
# keep-alive connection is closed after KEEP_ALIVE_S.
BODY_TIMEOUT_S, KEEP_ALIVE_S = 30.0, 5  # HEADER_TIMEOUT_S: textcnn.inference.slow_clients
# A prediction not done REQUEST_TIMEOUT_S after its request arrived (queued behind others on an
# overloaded server, or slow) is answered 503 with Retry-After instead of holding the client.
REQUEST_TIMEOUT_S = 30.0


class PredictRequest(BaseModel):
    # strict: "2" or true is not a top_k, "yes" is not a boolean
    model_config = ConfigDict(strict=True)

    texts: list[str] = Field(min_length=1, description="texts to classify")
    top_k: Optional[int] = Field(default=None, ge=1, description="only the k most probable classes")
    explain: bool = Field(default=False, description="add the n-grams behind each prediction")
    top_ngrams: int = Field(default=5, ge=1, le=100, description="n-grams per explanation")
    min_confidence: Optional[float] = Field(default=None, ge=0, le=1,
                                            description="abstain on texts whose largest probability is below this")
    min_precision: Optional[float] = Field(default=None, gt=0, le=1, description=(
        "abstain below the confidence at which the validation split's answered texts reach this accuracy"))


class BodyLimits:
    """ASGI middleware bounding what a request body may cost while it is read: more than
    ``max_bytes`` gets 413 as soon as they have arrived (a chunked body declares no length), and a
    body not complete ``seconds`` after the headers gets 408 (uvicorn waits for a slow body for ever)."""

    def __init__(self, app, max_bytes: int, seconds: float, advice: str = ""):
        self.app, self.max_bytes, self.seconds, self.advice = app, max_bytes, seconds, advice

    async def __call__(self, scope, receive, send):
        if scope["type"] != "http":
            return await self.app(scope, receive, send)
        loop = asyncio.get_running_loop()
        deadline, received, body_done = loop.time() + self.seconds, 0, False

        async def limited_receive():
            nonlocal received, body_done
            if body_done:  # later calls wait for the client to disconnect: no limit on those
                return await receive()
            try:
                message = await asyncio.wait_for(receive(), max(0.0, deadline - loop.time()))
            except asyncio.TimeoutError:
                raise HTTPException(408, f"the request body did not arrive within {self.seconds:g} s; "
                                    "send it at once") from None
            if message["type"] == "http.request":
                received += len(message.get("body", b""))
                if received > self.max_bytes:
                    raise HTTPException(413, f"the request body is over the limit of {self.max_bytes} bytes; "
                                        f"{self.advice}")
            body_done = message["type"] != "http.request" or not message.get("more_body", False)
            return message

        await self.app(scope, limited_receive, send)


# uvicorn settings that bound what a slow or idle client can hold: the header deadline (above), idle
# keep-alive connections closed, headers larger than 16 KiB refused, and at most 10 s for requests
# in flight when the server is stopped.
SLOW_CLIENT_LIMITS = dict(http=HeaderDeadline, timeout_keep_alive=KEEP_ALIVE_S,
                          h11_max_incomplete_event_size=16 * 1024, timeout_graceful_shutdown=10)


def _check_request(request: PredictRequest, predictor: BasePredictor, max_texts: int, max_chars: int) -> None:
    """413 for more texts or longer ones than the limits (characters, as decoded), 422 for text that is
    not Unicode or explanations the backend cannot give."""
    if len(request.texts) > max_texts:
        raise HTTPException(413, f"{len(request.texts)} texts in one request; send at most {max_texts}")
    for index, text in enumerate(request.texts):
        if len(text) > max_chars:
            raise HTTPException(413, f"text {index} has {len(text)} characters; the limit is {max_chars}")
    for index, text in enumerate(request.texts):
        if (position := first_surrogate(text)) is not None:
            raise HTTPException(422, f"text {index} holds a lone surrogate (U+{ord(text[position]):04X}) at "
                                f"character {position}, which is not Unicode text; send valid UTF-8 text")
    if request.explain and not isinstance(predictor, Predictor):
        raise HTTPException(422, "explanations need one PyTorch checkpoint; this server runs an ONNX export "
                            "or an ensemble")


def _answer_errors_in_one_line(app: FastAPI, max_body_bytes: int, too_large: str) -> None:
    """A declared body over the limit refused before it is read, and every error answered as
    ``{"detail": "one line"}``: validation errors (422), malformed JSON (422), HTTP errors."""
    @app.middleware("http")
    async def refuse_oversized_bodies(request: Request, call_next):
        length = request.headers.get("content-length")
        if length is not None and length.isdigit() and int(length) > max_body_bytes:
            return JSONResponse(
                status_code=413,
                content={"detail": f"request body of {length} bytes is over the limit of {max_body_bytes}; {too_large}"},
            )
        return await call_next(request)

    @app.exception_handler(RequestValidationError)
    async def one_line_validation_error(request: Request, error: RequestValidationError) -> JSONResponse:
        problems = []
        for item in error.errors():
            where = ".".join(str(part) for part in item.get("loc", ()) if part != "body")
            problems.append(f"{where}: {item['msg']}" if where else item["msg"])
        return JSONResponse(status_code=422, content={"detail": "; ".join(problems)})

    @app.exception_handler(StarletteHTTPException)
    async def one_line_http_error(request: Request, error: StarletteHTTPException) -> JSONResponse:
        # FastAPI answers 400 when json.loads fails with something other than a JSON syntax
        # error: a body that is not UTF-8, or nested too deeply for the parser's recursion. Both
        # are malformed JSON, so 422 as documented.
        cause = error.__cause__
        if error.status_code == 400 and isinstance(cause, UnicodeDecodeError):
            return JSONResponse(status_code=422, content={
                "detail": f"the body is not valid UTF-8 ({cause.reason} at byte {cause.start}); send UTF-8 JSON"})
        if error.status_code == 400 and isinstance(cause, RecursionError):
            return JSONResponse(status_code=422, content={
                "detail": 'the body is JSON nested too deeply to parse; send {"texts": [...]}'})
        return JSONResponse(status_code=error.status_code, content={"detail": error.detail},
                            headers=getattr(error, "headers", None))


def create_app(
    predictor: BasePredictor, max_texts: int = DEFAULT_MAX_TEXTS, max_chars: int = DEFAULT_MAX_CHARS,
    body_timeout_s: float = BODY_TIMEOUT_S, request_timeout_s: float = REQUEST_TIMEOUT_S,
) -> FastAPI:
    """The service around one loaded predictor."""
    if max_texts < 1 or max_chars < 1:
        raise UserInputError(f"--max-texts and --max-chars must be positive, got {max_texts} and {max_chars}")
    if not request_timeout_s > 0:
        raise UserInputError(f"--request-timeout must be a positive number of seconds, got {request_timeout_s}")
    # The limits are characters, counted once the JSON is decoded; the body's byte bound only stops what
    # no request within them can be: a character JSON-escaped takes at most 12 bytes (an emoji written as
    # a surrogate pair, "\ud83d\ude00", as json.dumps writes it by default).
    max_body_bytes = max_texts * (ESCAPED_BYTES_PER_CHAR * max_chars + 8) + JSON_OVERHEAD
    app = FastAPI(title="textcnn", description="Text classification with a TextCNN.")
    too_large = f"send at most {max_texts} texts of at most {max_chars} characters"
    # A chunked body declares no length: BodyLimits counts its bytes as they arrive. (FastAPI's own
    # max_body_size answers a declared length in plain text, not the {"detail": …} every error has.)
    app.add_middleware(BodyLimits, max_bytes=max_body_bytes, seconds=body_timeout_s, advice=too_large)

    _answer_errors_in_one_line(app, max_body_bytes, too_large)

    @app.get("/health")
    def health() -> dict[str, str]:
        return {"status": "ok"}

    @app.get("/metadata")
    def metadata() -> dict[str, Any]:
        return {**predictor.metadata(), "limits": {"max_texts": max_texts, "max_chars": max_chars},
                "card": card_summary(getattr(predictor, "provenance", {}), getattr(predictor, "source", None))}

    def predict_now(request: PredictRequest) -> dict[str, Any]:
        try:
            abstaining = {name: value for name, value in (("min_confidence", request.min_confidence),
                                                          ("min_precision", request.min_precision)) if value is not None}
            predictions = predictor.predict(request.texts, top_k=request.top_k, **abstaining)
            if request.explain:
                for prediction, explanation in zip(predictions, predictor.explain(request.texts)):
                    prediction["explanation"] = explanation.to_dict(request.top_ngrams)
        except NonFiniteScoresError as error:  # the model is broken, not the request
            raise HTTPException(500, str(error)) from None
        except UserInputError as error:
            raise HTTPException(422, str(error)) from None
        return {"predictions": predictions}

    async def in_pool(function, *args):
        # In the thread pool, as a plain handler would be, but with a deadline that also covers the
        # wait for a free thread; a prediction past it is abandoned (its thread finishes on its own).
        with anyio.move_on_after(request_timeout_s) as deadline:
            return await anyio.to_thread.run_sync(function, *args, abandon_on_cancel=True)
        if deadline.cancelled_caught:
            raise HTTPException(503, f"the prediction did not finish within {request_timeout_s:g} s (the server is "
                                     "busy); retry later or send fewer texts", headers={"Retry-After": "1"})

    @app.post("/predict")
    async def predict(request: PredictRequest) -> dict[str, Any]:
        _check_request(request, predictor, max_texts, max_chars)
        return await in_pool(predict_now, request)

    add_page(app, predictor, max_chars, in_pool)
    return app


def serve(
    predictor: BasePredictor,
    host: str = DEFAULT_HOST,
    port: int = DEFAULT_PORT,
    max_texts: int = DEFAULT_MAX_TEXTS,
    max_chars: int = DEFAULT_MAX_CHARS,
    request_timeout_s: float = REQUEST_TIMEOUT_S,
    open_browser: bool = False,
) -> None:
    """Run the service until interrupted; its page's URL is logged once it listens (``open_browser``:
    and opened in the default browser)."""
    if not 0 <= port <= 65535:
        raise UserInputError(f"--port must be between 0 and 65535 (0: any free port), got {port}")
    if host not in ("127.0.0.1", "localhost", "::1"):
        log.warning("listening on %s: the service has no authentication; put it behind a proxy", host)
    app = create_app(predictor, max_texts, max_chars, request_timeout_s=request_timeout_s)
    server = uvicorn.Server(uvicorn.Config(app, host=host, port=port, log_level="info", **SLOW_CLIENT_LIMITS))
    threading.Thread(target=announce_page, args=(server, open_browser), daemon=True).start()
    server.run()
    server.should_exit = True  # ends announce_page's wait if the server never started
    if not server.started:  # as uvicorn.run ends when the server could not start
        sys.exit(3)

