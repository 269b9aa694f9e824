"""The HTTP service: real uvicorn servers on free loopback ports, called with an HTTP client."""

import contextlib
import json
import os
import socket
import subprocess
import sys
import threading
import time
from concurrent.futures import ThreadPoolExecutor

import httpx
import pytest
import uvicorn

import textcnn
from textcnn.inference.export import export_onnx
from textcnn.inference.serve import create_app
from tests.conftest import ROOT

MAX_TEXTS, MAX_CHARS = 8, 200
FIXTURE = ROOT / "tests" / "fixtures" / "textcnn-0.1.0" / "sst2_tiny.ckpt"
TEXTS = ["a gorgeous , witty , seductive movie .", "it 's a bad , bad film", "!"]


@contextlib.contextmanager
def running(app, **config):
    """uvicorn in a thread on a socket bound to a free loopback port; stopped when the block ends.
    ``config``: more ``uvicorn.Config`` settings."""
    sock = socket.socket()
    sock.bind(("127.0.0.1", 0))
    server = uvicorn.Server(uvicorn.Config(app, log_level="warning", **config))
    thread = threading.Thread(target=server.run, kwargs={"sockets": [sock]}, daemon=True)
    thread.start()
    try:
        deadline = time.monotonic() + 30
        while not server.started:
            assert thread.is_alive() and time.monotonic() < deadline, "the server did not start"
            time.sleep(0.02)
        yield f"http://127.0.0.1:{sock.getsockname()[1]}"
    finally:
        server.should_exit = True
        thread.join(timeout=10)
        sock.close()
    assert not thread.is_alive()


@pytest.fixture(scope="module")
def predictor(checkpoint):
    return textcnn.load(checkpoint)


@pytest.fixture(scope="module")
def url(predictor):
    with running(create_app(predictor, max_texts=MAX_TEXTS, max_chars=MAX_CHARS)) as base:
        yield base


def test_predict_returns_the_predictors_labels_and_probabilities(url, predictor):
    response = httpx.post(f"{url}/predict", json={"texts": TEXTS})
    assert response.status_code == 200
    predictions = response.json()["predictions"]
    expected = predictor.predict(TEXTS)
    assert [p["label"] for p in predictions] == [e["label"] for e in expected]
    for got, want in zip(predictions, expected):
        assert got["probabilities"] == pytest.approx(want["probabilities"], abs=1e-6)
    top = httpx.post(f"{url}/predict", json={"texts": TEXTS, "top_k": 1}).json()["predictions"]
    assert [list(p["probabilities"]) for p in top] == [[e["label"]] for e in expected]


def test_a_request_within_the_limits_passes_however_its_json_escapes_the_texts(url):
    """The limits count characters after decoding: the longest texts of emoji, each written as json.dumps
    writes it (a surrogate pair of \\u escapes, 12 bytes a character), are answered, one more is refused."""
    texts = ["\U0001F600" * MAX_CHARS] * MAX_TEXTS
    body = json.dumps({"texts": texts})  # ensure_ascii: "\ud83d\ude00" for each emoji
    assert len(body) > MAX_TEXTS * MAX_CHARS * 12
    response = httpx.post(f"{url}/predict", content=body, headers={"content-type": "application/json"})
    assert response.status_code == 200, response.text[:300]
    assert len(response.json()["predictions"]) == MAX_TEXTS
    longer = json.dumps({"texts": ["\U0001F600" * (MAX_CHARS + 1)]})
    refused = httpx.post(f"{url}/predict", content=longer, headers={"content-type": "application/json"})
    assert refused.status_code == 413 and "characters" in refused.json()["detail"]


def test_explanations_on_request(url, predictor):
    plain = httpx.post(f"{url}/predict", json={"texts": TEXTS}).json()["predictions"]
    assert all("explanation" not in p for p in plain)
    explained = httpx.post(f"{url}/predict", json={"texts": TEXTS, "explain": True, "top_ngrams": 2}).json()
    for prediction, text in zip(explained["predictions"], TEXTS):
        explanation = prediction["explanation"]
        assert explanation["label"] == prediction["label"] and len(explanation["ngrams"]) <= 2
        total = explanation["bias"] + explanation["rest"] + sum(g["contribution"] for g in explanation["ngrams"])
        assert total == pytest.approx(explanation["logit"], abs=1e-4)
        alone = predictor.explain([text])[0].to_dict(2)
        assert [g["ngram"] for g in explanation["ngrams"]] == [g["ngram"] for g in alone["ngrams"]]
        assert explanation["logit"] == pytest.approx(alone["logit"], abs=1e-5)


def test_health_and_metadata(url, predictor):
    assert httpx.get(f"{url}/health").json() == {"status": "ok"}
    metadata = httpx.get(f"{url}/metadata").json()
    assert metadata["label_names"] == ["negative", "positive"] and metadata["backend"] == "pytorch"
    assert metadata["network"]["kernel_sizes"] == [[3], [3]]
    assert metadata["num_parameters"] == sum(p.numel() for p in predictor.model.parameters())
    assert metadata["size_bytes"] == 4 * metadata["num_parameters"]
    assert metadata["limits"] == {"max_texts": MAX_TEXTS, "max_chars": MAX_CHARS}


@pytest.mark.parametrize("body, status, message", [
    ({"texts": ["fine"] * (MAX_TEXTS + 1)}, 413, f"9 texts in one request; send at most {MAX_TEXTS}"),
    ({"texts": ["fine", "x" * (MAX_CHARS + 1)]}, 413, f"text 1 has 201 characters; the limit is {MAX_CHARS}"),
    ({"texts": []}, 422, "texts: List should have at least 1 item"),
    ({"texts": ["fine", 3]}, 422, "texts.1: Input should be a valid string"),
    ({"text": "fine"}, 422, "texts: Field required"),
    ({"texts": ["fine"], "top_k": 3}, 422, "top_k must be between 1 and 2"),
    ({"texts": ["fine"], "top_k": 0}, 422, "top_k: Input should be greater than or equal to 1"),
    ({"texts": ["fine"], "top_k": "2"}, 422, "top_k: Input should be a valid integer"),
    ({"texts": ["fine"], "top_k": True}, 422, "top_k: Input should be a valid integer"),
    ({"texts": ["fine"], "top_k": 1.0}, 422, "top_k: Input should be a valid integer"),
    ({"texts": ["fine"], "explain": "yes"}, 422, "explain: Input should be a valid boolean"),
    ({"texts": ["fine"], "explain": 1}, 422, "explain: Input should be a valid boolean"),
    ({"texts": ["fine"], "top_ngrams": "3"}, 422, "top_ngrams: Input should be a valid integer"),
])
def test_bad_requests_get_a_clear_status_and_message(url, body, status, message):
    response = httpx.post(f"{url}/predict", json=body)
    assert response.status_code == status
    assert message in response.json()["detail"]


def test_malformed_json_and_oversized_bodies_are_refused(url):
    response = httpx.post(f"{url}/predict", content=b'{"texts": ["fine",', headers={"content-type": "application/json"})
    assert response.status_code == 422 and "JSON decode error" in response.json()["detail"]
    huge = json.dumps({"texts": ["x" * 100_000]}).encode()
    response = httpx.post(f"{url}/predict", content=huge, headers={"content-type": "application/json"})
    assert response.status_code == 413 and "over the limit" in response.json()["detail"]


@pytest.mark.parametrize("body, message", [
    (b"[" * 4000 + b"]" * 4000, "nested too deeply"),
    (b'{"texts": ' + b"[" * 4000 + b"]" * 4000 + b"}", "nested too deeply"),
    (b'{"texts": ["caf\xe9"]}', "not valid UTF-8 (invalid continuation byte at byte 15)"),
])
def test_deeply_nested_and_undecodable_bodies_get_422(url, body, message):
    response = httpx.post(f"{url}/predict", content=body, headers={"content-type": "application/json"})
    assert response.status_code == 422 and message in response.json()["detail"]


def test_concurrent_requests_all_succeed_and_agree(url, predictor):
    expected = {text: result["label"] for text, result in zip(TEXTS, predictor.predict(TEXTS))}
    with httpx.Client() as client, ThreadPoolExecutor(max_workers=8) as pool:
        responses = list(pool.map(lambda i: client.post(f"{url}/predict", json={"texts": [TEXTS[i % 3]]}), range(48)))
    assert [r.status_code for r in responses] == [200] * 48
    for i, response in enumerate(responses):
        assert response.json()["predictions"][0]["label"] == expected[TEXTS[i % 3]]


class SlowPredictor:
    """The fixture model behind a prediction that takes ``seconds``: a busy or overloaded server."""

    def __init__(self, predictor, seconds: float):
        self.predictor, self.seconds = predictor, seconds

    def predict(self, texts, top_k=None):
        time.sleep(self.seconds)
        return self.predictor.predict(texts, top_k=top_k)

    def __getattr__(self, name):
        return getattr(self.predictor, name)


def test_a_prediction_past_the_request_deadline_gets_503_with_retry_after():
    slow = SlowPredictor(textcnn.load(FIXTURE), seconds=3)
    with running(create_app(slow, request_timeout_s=0.5)) as base:
        started = time.monotonic()
        response = httpx.post(f"{base}/predict", json={"texts": TEXTS}, timeout=10)
        waited = time.monotonic() - started
        assert response.status_code == 503 and response.headers["retry-after"] == "1"
        assert "did not finish within 0.5 s" in response.json()["detail"]
        assert waited < 2.5  # answered at the deadline, not when the prediction ended
        assert httpx.get(f"{base}/health").status_code == 200
    with running(create_app(SlowPredictor(textcnn.load(FIXTURE), seconds=0.1), request_timeout_s=5)) as base:
        assert httpx.post(f"{base}/predict", json={"texts": TEXTS}, timeout=10).status_code == 200


def test_load_script_reports_throughput_and_latency(predictor):
    with running(create_app(predictor)) as url:  # default limits: every SST-2 sentence fits
        result = subprocess.run(
            [sys.executable, str(ROOT / "scripts" / "load_test.py"), "--url", url, "--requests", "40",
             "--concurrency", "4"],
            capture_output=True, timeout=120,
        )
    assert result.returncode == 0, result.stderr.decode()[-2000:]
    report = json.loads(result.stdout)
    assert report["status_codes"] == {"200": 40} and report["requests_per_s"] > 0
    assert 0 < report["latency_ms"]["p50"] <= report["latency_ms"]["p99"] <= report["latency_ms"]["max"]
    refused = subprocess.run([sys.executable, str(ROOT / "scripts" / "load_test.py"), "--url", "http://example.com"],
                             capture_output=True, timeout=60)
    assert refused.returncode == 2 and b"loopback" in refused.stderr


def test_serve_command_runs_an_onnx_export(checkpoint, tmp_path):
    """`textcnn serve` as a user starts it, on an export directory: no checkpoint needed."""
    export = export_onnx(checkpoint, tmp_path / "onnx")["output"]
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    process = subprocess.Popen(
        [sys.executable, "-m", "textcnn", "serve", "--checkpoint", export, "--port", str(port)],
        stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, env={**os.environ, "PYTHONUNBUFFERED": "1"},
    )
    url = f"http://127.0.0.1:{port}"
    try:
        for _ in range(300):  # up to 60 s
            assert process.poll() is None, process.stderr.read().decode()[-2000:]
            with contextlib.suppress(httpx.TransportError):
                if httpx.get(f"{url}/health", timeout=1).status_code == 200:
                    break
            time.sleep(0.2)
        assert httpx.get(f"{url}/metadata").json()["backend"] == "onnx"
        predictions = httpx.post(f"{url}/predict", json={"texts": TEXTS}).json()["predictions"]
        assert [p["label"] for p in predictions] == [r["label"] for r in textcnn.load(checkpoint).predict(TEXTS)]
        response = httpx.post(f"{url}/predict", json={"texts": TEXTS, "explain": True})
        assert response.status_code == 422 and "explanations need one PyTorch checkpoint" in response.json()["detail"]
    finally:
        process.terminate()
        process.wait(timeout=30)
        log = process.stderr.read().decode()
        process.stderr.close()
    assert f"Uvicorn running on http://127.0.0.1:{port}" in log  # loopback unless --host says otherwise


def test_a_server_runs_an_ensemble_and_refuses_to_explain_it(checkpoint, tmp_path):
    from tests.test_ensemble import another_model

    ensemble = textcnn.load([checkpoint, another_model(checkpoint, tmp_path / "other.ckpt")])
    with running(create_app(ensemble)) as base:
        response = httpx.post(f"{base}/predict", json={"texts": TEXTS})
        assert response.status_code == 200
        assert response.json()["predictions"] == ensemble.predict(TEXTS)
        assert httpx.get(f"{base}/metadata").json()["backend"] == "ensemble"
        response = httpx.post(f"{base}/predict", json={"texts": TEXTS, "explain": True})
        assert response.status_code == 422 and "or an ensemble" in response.json()["detail"]
