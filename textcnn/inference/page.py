"""The service's page: try the model in a browser, beside the JSON API.

``GET /`` is ``static/index.html``; ``/page/app.js`` and ``/page/style.css`` are its script and styles.
Each answer carries ``Content-Security-Policy: default-src 'self'``: the browser runs no inline script
and fetches nothing from elsewhere, so the page works offline and behind firewalls.
``POST /predict-file?filename=NAME`` takes a file's bytes (CSV, JSON Lines or plain text: see
:mod:`textcnn.inference.uploads`) under the API's body and text limits, and answers a predictions CSV
in ``textcnn predict --format csv``'s columns.
"""

from __future__ import annotations

import io
import logging
import time
import webbrowser
from pathlib import Path
from typing import Any, Awaitable, Callable, Optional

from fastapi import FastAPI, HTTPException, Request, Response

from textcnn.errors import UserInputError
from textcnn.inference.predictor import BasePredictor, NonFiniteScoresError
from textcnn.inference.prediction_io import PredictionPrinter
from textcnn.inference.uploads import upload_texts

log = logging.getLogger(__name__)

STATIC = Path(__file__).with_name("static")
MEDIA_TYPES = {"index.html": "text/html; charset=utf-8", "app.js": "text/javascript; charset=utf-8",
               "style.css": "text/css; charset=utf-8"}
SECURITY_HEADERS = {"Content-Security-Policy": "default-src 'self'", "X-Content-Type-Options": "nosniff"}


def add_page(app: FastAPI, predictor: BasePredictor, max_chars: int,
             in_pool: Callable[..., Awaitable[Any]]) -> None:
    """The page's routes; ``in_pool(function, *args)`` runs a prediction as ``/predict`` runs its own."""
    files = {name: (STATIC / name).read_bytes() for name in MEDIA_TYPES}

    def static(name: str) -> Response:
        return Response(files[name], media_type=MEDIA_TYPES[name], headers=SECURITY_HEADERS)

    @app.get("/", include_in_schema=False)
    def page() -> Response:
        return static("index.html")

    @app.get("/page/{name}", include_in_schema=False)
    def page_file(name: str) -> Response:
        if name not in files or name == "index.html":
            raise HTTPException(404, f"the page has no file {name!r}")
        return static(name)

    @app.post("/predict-file")
    async def predict_file(request: Request, filename: str = "texts.txt", min_precision: Optional[float] = None,
                           min_confidence: Optional[float] = None) -> Response:
        try:
            texts = upload_texts(await request.body(), filename)
        except UserInputError as error:
            raise HTTPException(422, str(error)) from None
        for number, text in enumerate(texts, start=1):
            if len(text) > max_chars:
                raise HTTPException(413, f"text {number} of {filename} has {len(text)} characters; the limit is "
                                    f"{max_chars}")
        abstaining = {name: value for name, value in (("min_precision", min_precision),
                                                      ("min_confidence", min_confidence)) if value is not None}
        table = await in_pool(predictions_csv, predictor, texts, abstaining)
        name = Path(filename).stem or "texts"
        return Response(table, media_type="text/csv; charset=utf-8",
                        headers={"Content-Disposition": f'attachment; filename="{safe_name(name)}-predictions.csv"'})


def predictions_csv(predictor: BasePredictor, texts: list[str], abstaining: dict[str, float]) -> str:
    """The texts' predictions as ``textcnn predict --format csv`` prints them."""
    try:
        results = predictor.predict(texts, **abstaining)
    except NonFiniteScoresError as error:  # the model is broken, not the file
        raise HTTPException(500, str(error)) from None
    except UserInputError as error:
        raise HTTPException(422, str(error)) from None
    buffer = io.StringIO()
    PredictionPrinter("csv", predictor.label_names, None, predictor.multi_label, explained=False,
                      abstaining=bool(abstaining), stream=buffer).print(texts, results, {})
    return buffer.getvalue()


def safe_name(name: str) -> str:
    """A file name fit for a Content-Disposition header: letters, digits, dots, dashes, underscores."""
    return "".join(c if c.isascii() and (c.isalnum() or c in "._-") else "_" for c in name)[:100]


def page_url(host: str, port: int) -> str:
    """Where a browser on this machine finds the page of a server listening on ``host``."""
    host = {"0.0.0.0": "127.0.0.1", "::": "::1"}.get(host, host)
    return f"http://[{host}]:{port}/" if ":" in host else f"http://{host}:{port}/"


def announce_page(server: Any, open_browser: bool) -> None:
    """Once ``server`` (a ``uvicorn.Server``) listens: log the page's URL, with the port it got when it
    asked for any, and open it in the default browser when asked to."""
    while not server.started:
        if server.should_exit:
            return
        time.sleep(0.05)
    host, port = server.servers[0].sockets[0].getsockname()[:2]
    url = page_url(host, port)
    log.info("the page: %s", url)
    if open_browser and not webbrowser.open(url):
        log.warning("no browser could be opened here; open %s yourself", url)
