"""The service's page without a browser: its files and headers, the file upload's formats and errors,
and where the start-up log and --open send the user."""

from __future__ import annotations

import csv
import io
import logging
from types import SimpleNamespace

import httpx
import pytest

import textcnn
from textcnn.inference import page
from textcnn.inference.serve import create_app
from tests.test_serve import FIXTURE, running

MAX_CHARS = 50


@pytest.fixture(scope="module")
def predictor():
    return textcnn.load(FIXTURE)


@pytest.fixture(scope="module")
def url(predictor):
    with running(create_app(predictor, max_texts=4, max_chars=MAX_CHARS)) as base:
        yield base


def test_the_page_and_its_files_are_served_under_a_same_origin_policy(url):
    for path, media_type in [("/", "text/html"), ("/page/app.js", "text/javascript"), ("/page/style.css", "text/css")]:
        response = httpx.get(url + path)
        assert response.status_code == 200 and response.headers["content-type"].startswith(media_type)
        assert response.headers["content-security-policy"] == "default-src 'self'"
    html = httpx.get(url + "/").text
    assert "<script>" not in html and "style=" not in html and "http" not in html  # nothing inline, nothing remote
    assert "innerHTML" not in httpx.get(url + "/page/app.js").text
    assert httpx.get(url + "/page/index.html").status_code == 404
    assert httpx.get(url + "/page/../serve.py").status_code == 404


def test_metadata_carries_the_model_cards_summary(url):
    card = httpx.get(url + "/metadata").json()["card"]
    assert card["training_data"] == "sst2" and card["epochs_trained"] == 2 and card["evaluation"] == []
    assert card["saved"].endswith("+00:00") and card["trained_at"] is None  # saved before it was recorded


@pytest.mark.parametrize("name, body", [
    ("reviews.csv", "id,text\n1,a fine film\n2,\"dull , lifeless\"\n3,\n"),
    ("reviews.tsv", "text\tid\na fine film\t1\ndull , lifeless\t2\n\t3\n"),
    ("reviews.jsonl", '{"text": "a fine film"}\n\n{"text": "dull , lifeless"}\n{"text": null}\n'),
    ("reviews.txt", "a fine film\ndull , lifeless\n\n"),
])
def test_an_uploaded_file_comes_back_as_the_predict_commands_csv(url, predictor, name, body):
    response = httpx.post(url + "/predict-file", params={"filename": name}, content=body.encode())
    assert response.status_code == 200, response.text
    assert response.headers["content-disposition"] == 'attachment; filename="reviews-predictions.csv"'
    rows = list(csv.DictReader(io.StringIO(response.text)))
    texts = ["a fine film", "dull , lifeless", ""]
    assert [row["text"] for row in rows] == texts
    assert [row["label"] for row in rows] == [p["label"] for p in predictor.predict(texts)]
    assert list(rows[0]) == ["text", "label", "negative", "positive"]


def test_an_upload_can_abstain(url):
    response = httpx.post(url + "/predict-file", params={"filename": "a.txt", "min_confidence": 0.99},
                          content=b"a fine film\n")
    row = next(csv.DictReader(io.StringIO(response.text)))
    assert row["abstained"] == "True" and row["label"] == ""


@pytest.mark.parametrize("name, body, status, message", [
    ("a.csv", b"id,review\n1,fine\n", 422, "a.csv has no 'text' column (columns: id, review)"),
    ("a.jsonl", b'{"review": "fine"}\n', 422, "a.jsonl line 1 has no string 'text'"),
    ("a.jsonl", b"{oops\n", 422, "a.jsonl line 1 is not JSON"),
    ("a.txt", b"fine\n\xff\n", 422, "a.txt: line 2 is not valid UTF-8"),
    ("a.csv", b"text\n\xff\n", 422, "a.csv is not valid UTF-8"),
    ("a.txt", b"", 422, "a.txt holds no texts"),
    ("a.txt", b"fine\n" + b"x" * (MAX_CHARS + 1), 413, f"text 2 of a.txt has {MAX_CHARS + 1} characters"),
])
def test_a_bad_upload_gets_one_line_saying_what_is_wrong(url, name, body, status, message):
    response = httpx.post(url + "/predict-file", params={"filename": name}, content=body)
    assert response.status_code == status and response.json()["detail"].startswith(message)


def test_a_model_without_a_table_refuses_min_precision_on_an_upload(url):
    response = httpx.post(url + "/predict-file", params={"filename": "a.txt", "min_precision": 0.9}, content=b"fine\n")
    assert response.status_code == 422 and "min_precision" in response.json()["detail"]


def test_the_log_names_the_pages_url_and_open_sends_the_browser_there(monkeypatch, caplog):
    opened = []
    monkeypatch.setattr(page.webbrowser, "open", lambda url: opened.append(url) or True)
    listening = SimpleNamespace(sockets=[SimpleNamespace(getsockname=lambda: ("0.0.0.0", 8123))])
    server = SimpleNamespace(started=True, should_exit=False, servers=[listening])
    with caplog.at_level(logging.INFO, logger="textcnn.inference.page"):
        page.announce_page(server, open_browser=False)
        page.announce_page(server, open_browser=True)
    assert caplog.messages == ["the page: http://127.0.0.1:8123/"] * 2
    assert opened == ["http://127.0.0.1:8123/"]
    assert page.page_url("::1", 8000) == "http://[::1]:8000/"
