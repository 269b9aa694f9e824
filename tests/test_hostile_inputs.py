"""Whatever users type: every text gets a prediction or a clear error, never a crash or a hang."""

import json
import math
import subprocess
import sys
import time

import pytest
from hypothesis import HealthCheck, example, given, settings
from hypothesis import strategies as st

import textcnn
from tests.conftest import ROOT

ODD_TEXTS = [
    "",
    "   \t  ",
    "\x00\x00 nul \x00",
    "\x07\x1b[31m control \x7f",
    "مرحبا بالعالم — هذا فيلم رائع",
    "\u202eevil right-to-left override\u202c",
    "😀🔥🎬 great 👍🏽",
    "[PAD] [UNK] [PAD]",
    "\ud7ff\ue000\U0010ffff",
]


@pytest.fixture(scope="module")
def predictor(checkpoint):
    return textcnn.load(checkpoint)


def assert_valid(results, label_names):
    for result in results:
        assert result["label"] in label_names
        probabilities = list(result["probabilities"].values())
        assert all(math.isfinite(p) and 0.0 <= p <= 1.0 for p in probabilities)
        assert sum(probabilities) == pytest.approx(1.0, abs=1e-5)


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(texts=st.lists(st.text(alphabet=st.characters(codec="utf-8")), min_size=1, max_size=8))
@example(texts=ODD_TEXTS)
def test_any_unicode_gets_a_prediction(predictor, texts):
    assert_valid(predictor.predict(texts), predictor.label_names)


def test_a_million_characters_is_quick_and_bounded(predictor):
    huge = "what a film " * 90_000 + "\x00" * 10_000
    start = time.monotonic()
    results = predictor.predict([huge, "x" * 1_000_000])
    assert time.monotonic() - start < 5.0
    assert_valid(results, predictor.label_names)
    assert predictor.batch([huge]).shape[1] <= predictor.max_length  # truncated before the model


def test_predict_cli_handles_odd_lines_and_nul_bytes(checkpoint, tmp_path):
    lines = [text.replace("\n", " ") for text in ODD_TEXTS] + ["y" * 1_000_000]
    path = tmp_path / "odd.txt"
    path.write_text("\n".join(lines) + "\n", encoding="utf-8", errors="surrogatepass")
    result = subprocess.run(
        [sys.executable, str(ROOT / "scripts" / "predict.py"), "--checkpoint", str(checkpoint), "--file", str(path)],
        capture_output=True, timeout=120,
    )
    assert result.returncode == 0, result.stderr.decode()[-2000:]
    outputs = [json.loads(line) for line in result.stdout.decode().splitlines()]
    assert len(outputs) == len(lines)
    assert_valid(outputs, ["negative", "positive"])


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(texts=st.lists(st.text(alphabet=st.characters(codec="utf-8"), max_size=300), min_size=1, max_size=4))
@example(texts=ODD_TEXTS)
def test_the_http_service_answers_any_unicode(service, texts):
    url, client, max_chars = service
    response = client.post(f"{url}/predict", json={"texts": texts})
    if any(len(text) > max_chars for text in texts):
        assert response.status_code == 413 and "characters" in response.json()["detail"]
    else:
        assert response.status_code == 200, response.text
        assert_valid(response.json()["predictions"], ["negative", "positive"])


@pytest.fixture(scope="module")
def service(predictor):
    import httpx

    from tests.test_serve import running
    from textcnn.inference.serve import create_app

    max_chars = 200
    with running(create_app(predictor, max_texts=16, max_chars=max_chars)) as url, httpx.Client(timeout=30) as client:
        yield url, client, max_chars
