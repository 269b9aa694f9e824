"""The service's page in a real browser: Playwright driving the system's Chromium (Debian's package;
Playwright's own browser download is never used), against a server on a free loopback port that runs
the released tiny model. Every request to anything but that server is aborted and recorded."""

from __future__ import annotations

import contextlib
import csv
import os
import shutil
import statistics
import time
from pathlib import Path

import pytest
import torch

import textcnn
from textcnn.inference import selective
from textcnn.inference.predictor import Predictor
from textcnn.inference.serve import create_app
from tests.test_serve import FIXTURE, TEXTS, running

CHROMIUM = os.environ.get("TEXTCNN_CHROMIUM") or shutil.which("chromium") or shutil.which("chromium-browser")
sync_api = pytest.importorskip("playwright.sync_api", reason="the browser tests need playwright (the dev extra)")
if CHROMIUM is None:
    pytest.skip("no Chromium found (apt-get install chromium, or set TEXTCNN_CHROMIUM): the browser tests are skipped",
                allow_module_level=True)
pytestmark = [pytest.mark.slow, pytest.mark.browser]
XSS_TEXTS = ["<script>alert(1)</script>", "<img src=x onerror=alert(1)>", "it 's <b>bold</b> & \"fine\" </p>"]


@pytest.fixture(scope="module")
def predictor():
    return textcnn.load(FIXTURE)


@pytest.fixture(scope="module")
def url(predictor):
    with running(create_app(predictor)) as base:
        yield base


@pytest.fixture(scope="module")
def browser():
    with sync_api.sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=CHROMIUM)
        yield browser
        browser.close()


@pytest.fixture
def offline(browser):
    """A page whose requests to anything but ``offline.server`` are aborted; ``offline.blocked``: their URLs."""
    context = browser.new_context(accept_downloads=True)
    page = context.new_page()
    page.blocked, page.dialogs = [], []

    def only_the_server(route):
        if route.request.url.startswith(page.server + "/"):
            route.continue_()
        else:
            page.blocked.append(route.request.url)
            route.abort()

    page.route("**/*", only_the_server)
    page.on("dialog", lambda dialog: (page.dialogs.append(dialog.message), dialog.dismiss()))
    yield page
    context.close()


def open_page(page, base: str):
    page.server = base
    response = page.goto(base + "/")
    assert response.headers["content-security-policy"] == "default-src 'self'"
    page.wait_for_selector("body[data-ready=true]")
    return page


def predict(page, text: str, keys: str = "") -> dict:
    """Type ``text``, predict (the button, or ``keys`` pressed in the text box), and read what the page shows."""
    run = int(page.get_attribute("#result", "data-run") or 0)
    page.fill("#text", text)
    if keys:
        page.press("#text", keys)
    else:
        page.click("#predict")
    page.wait_for_selector(f"#result[data-run='{run + 1}']")
    return {"label": page.text_content("#label"),
            "marks": page.eval_on_selector_all("#highlighted mark", "marks => marks.map(m => [m.textContent, m.title])"),
            "legend": page.eval_on_selector_all("#legend tbody td:first-child", "cells => cells.map(c => c.textContent)"),
            "bars": page.eval_on_selector_all("#probabilities .row", "rows => rows.map(r => r.dataset.label)"),
            "highlighted": page.text_content("#highlighted"),
            "ms": float(page.get_attribute("#result", "data-ms"))}


def test_a_typed_text_shows_its_label_bars_and_deciding_ngrams(offline, url, predictor):
    page = open_page(offline, url)
    assert page.is_hidden("#abstain-control")  # the released model has no risk-coverage table
    assert "negative, positive" in page.text_content("#card-facts")
    for text, keys in [(TEXTS[0], ""), (TEXTS[1], "Control+Enter")]:
        shown = predict(page, text, keys)
        expected = predictor.predict([text])[0]["label"]
        explanation = predictor.explain([text])[0].to_dict(8)
        assert shown["label"] == expected and shown["bars"] == ["negative", "positive"]
        assert shown["highlighted"] == text
        assert shown["legend"] == [g["ngram"] for g in explanation["ngrams"]]
        strongest = max(explanation["ngrams"], key=lambda g: abs(g["contribution"]))
        assert strongest["ngram"] in [mark for mark, _ in shown["marks"]]
        assert all(title.startswith(f"{mark}: ") and title.endswith(f"logit of {expected}")
                   for mark, title in shown["marks"])
    assert page.blocked == [] and page.dialogs == []


def test_a_1000_row_csv_comes_back_as_a_predictions_csv(offline, url, predictor, tmp_path):
    words = ["a", "gripping", "dull", "film", "funny", "bad", "movie", "witty", ",", "lifeless", "!"]
    texts = [" ".join(words[(row * 7 + k * 3) % len(words)] for k in range(2 + row % 9)) for row in range(1000)]
    upload = tmp_path / "reviews.csv"
    with upload.open("w", newline="", encoding="utf-8") as handle:
        csv.writer(handle).writerows([["id", "text"], *([row, text] for row, text in enumerate(texts))])
    page = open_page(offline, url)
    page.set_input_files("#file", str(upload))
    with page.expect_download() as download:
        page.click("#predict-file")
    assert download.value.suggested_filename == "reviews-predictions.csv"
    with open(download.value.path(), newline="", encoding="utf-8") as handle:
        rows = list(csv.DictReader(handle))
    expected = predictor.predict(texts)
    assert [row["text"] for row in rows] == texts
    assert [row["label"] for row in rows] == [e["label"] for e in expected]
    assert [float(row["positive"]) for row in rows] == pytest.approx(
        [e["probabilities"]["positive"] for e in expected], abs=1e-6)
    assert page.blocked == []


@pytest.mark.parametrize("text", XSS_TEXTS)
def test_markup_in_a_text_shows_literally_and_never_runs(offline, url, text):
    page = open_page(offline, url)
    elements_before = page.evaluate("document.getElementsByTagName('*').length")
    shown = predict(page, text)
    page.wait_for_timeout(200)  # an injected handler would have fired by now
    assert page.dialogs == []
    assert shown["highlighted"] == text
    assert page.evaluate("document.querySelectorAll('#result script, #result img, #result b, #result p p').length") == 0
    added = page.evaluate("[...document.querySelectorAll('#result *')].map(e => e.tagName.toLowerCase())")
    assert set(added) <= {"p", "strong", "span", "div", "h3", "mark", "table", "thead", "tbody", "tr", "th", "td"}
    assert page.evaluate("document.getElementsByTagName('*').length") > elements_before  # the result was drawn
    assert page.evaluate("document.scripts.length") == 1 and page.blocked == []


def test_the_page_loads_and_predicts_with_every_other_host_unreachable(offline, url):
    page = open_page(offline, url)
    predict(page, TEXTS[2])
    assert page.blocked == []
    stylesheet = page.evaluate("getComputedStyle(document.querySelector('button')).borderRadius")
    assert stylesheet == "4px"  # style.css, from the server, applied under the CSP


def abstaining_predictor(predictor) -> Predictor:
    """The released model with a risk-coverage table whose targets need more confidence than it ever has."""
    generator = torch.Generator().manual_seed(0)
    labels = torch.randint(0, 2, (1000,), generator=generator)
    logits = torch.randn(1000, 2, generator=generator)
    logits[torch.arange(1000), labels] += 4 * torch.rand(1000, generator=generator)
    return Predictor(predictor.model, predictor.tokenizer, predictor.label_names, predictor.max_length,
                     risk_coverage=selective.risk_coverage(logits, labels))


def test_a_model_with_a_table_offers_abstaining_and_shows_when_it_abstains(offline, predictor):
    with running(create_app(abstaining_predictor(predictor))) as base:
        page = open_page(offline, base)
        assert page.is_visible("#abstain-control")
        assert not page.is_visible("#abstained")
        page.select_option("#min-precision", index=page.eval_on_selector("#min-precision", "s => s.options.length") - 1)
        shown = predict(page, TEXTS[0])
        assert page.is_visible("#abstained") and page.text_content("#abstained") == "abstained"
        assert shown["label"] == "none"
        page.select_option("#min-precision", "")
        assert predict(page, TEXTS[0])["label"] == predictor.predict([TEXTS[0]])[0]["label"]
        assert not page.is_visible("#abstained")


def test_end_to_end_prediction_time_in_the_browser(offline, url, capsys, record_property):
    """Click → label shown, as the page measures it (performance.now around fetch and drawing) and as
    Playwright sees it; reported, not asserted: timings depend on the machine."""
    page = open_page(offline, url)
    predict(page, TEXTS[0])  # warm up: the explainer is built on first use
    in_page, outside = [], []
    for index in range(20):
        page.fill("#text", f"{TEXTS[index % 2]} {index}")
        started = time.perf_counter()
        page.click("#predict")
        page.wait_for_selector(f"#result[data-run='{index + 2}']")
        outside.append(1000 * (time.perf_counter() - started))
        in_page.append(float(page.get_attribute("#result", "data-ms")))
    medians = statistics.median(in_page), statistics.median(outside)
    record_property("browser_predict_median_ms", medians[0])
    with capsys.disabled():
        print(f"\nbrowser prediction, click to label shown, median of 20: {medians[0]:.1f} ms in the page "
              f"(performance.now), {medians[1]:.1f} ms seen from Playwright")
    assert all(ms > 0 for ms in in_page)


def test_a_screenshot_of_the_page(offline, url, tmp_path):
    """The docs' picture: TEXTCNN_PAGE_SCREENSHOT=docs/images/serve-page.png writes it there, of the
    model TEXTCNN_PAGE_MODEL names (the docs': the default recipe's SST-2 model), else of the fixture's."""
    model = os.environ.get("TEXTCNN_PAGE_MODEL")
    with running(create_app(textcnn.load(model))) if model else contextlib.nullcontext(url) as base:
        page = open_page(offline, base)
        page.set_viewport_size({"width": 1000, "height": 1100})
        predict(page, "a gorgeous , witty , seductive movie , but the plot is dull .")
        target = Path(os.environ.get("TEXTCNN_PAGE_SCREENSHOT") or tmp_path / "serve-page.png")
        page.screenshot(path=str(target), full_page=True)
    assert target.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


@pytest.mark.parametrize("model, shows", [
    ("trec_multilabel_tiny.ckpt", "labels"),  # a set of labels, perhaps empty
    ("sst2_tiny-onnx", "no explanation"),  # an ONNX export explains nothing: no marks, the text as typed
])
def test_multi_label_models_and_exports_show_what_they_have(offline, model, shows):
    predictor = textcnn.load(FIXTURE.parent / model)
    with running(create_app(predictor)) as base:
        page = open_page(offline, base)
        text = "how many people live in tokyo ?"
        shown = predict(page, text)
        expected = predictor.predict([text])[0]
        if shows == "labels":
            assert shown["label"] == (", ".join(expected["labels"]) or "none")
            assert shown["marks"] and shown["bars"] == predictor.label_names
        else:
            assert shown["label"] == expected["label"] and shown["marks"] == [] and shown["highlighted"] == text
            assert "gives no explanations" in page.text_content("#explanation-note")
    assert page.blocked == [] and page.dialogs == []
