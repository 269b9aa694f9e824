"""Whatever users type: every text gets a prediction or a clear error, never a crash or a hang."""

import contextlib
import json
import math
import os
import subprocess
import sys
import time
from pathlib import Path

import pytest
from hypothesis import HealthCheck, example, given, settings
from hypothesis import strategies as st

import textcnn
from textcnn.errors import UserInputError

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
# Python strings that are not Unicode text: lone surrogates, as a JSON "\ud800" escape or an
# undecodable byte of a command-line argument (surrogateescape) make them.
SURROGATE_TEXTS = ["\ud800", "lone \udfff low", "a \udcff byte", "\ud83d\ude00 as two code points", "\ude00\ud83d"]
# Any code point, surrogates included, with NUL and surrogates drawn often.
ANY_CHARACTER = st.one_of(st.characters(exclude_categories=()), st.sampled_from("\x00\ud800\udbff\udc00\udfff\udcff"))
FIXTURES = Path(__file__).parent / "fixtures" / "textcnn-0.1.0"
BACKENDS = {"pytorch": FIXTURES / "sst2_tiny.ckpt", "onnx": FIXTURES / "sst2_tiny-onnx"}


def has_surrogate(text: str) -> bool:
    return any(0xD800 <= ord(character) <= 0xDFFF for character in text)


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
@given(texts=st.lists(st.text(alphabet=ANY_CHARACTER), min_size=1, max_size=8))
@example(texts=ODD_TEXTS)
@example(texts=SURROGATE_TEXTS)
def test_any_unicode_gets_a_prediction(predictor, texts):
    assert_valid(predictor.predict(texts), predictor.label_names)


@pytest.fixture(scope="module", params=sorted(BACKENDS))
def released_predictor(request):
    """The 0.1.0 fixture model on each backend: PyTorch and ONNX Runtime share the input checks."""
    return textcnn.load(BACKENDS[request.param])


@settings(max_examples=100, deadline=None)
@given(texts=st.lists(st.text(alphabet=ANY_CHARACTER, max_size=200), min_size=1, max_size=6))
@example(texts=ODD_TEXTS + SURROGATE_TEXTS)
def test_every_backend_reads_lone_surrogates_as_the_replacement_character(released_predictor, texts):
    results = released_predictor.predict(texts)
    assert_valid(results, released_predictor.label_names)
    replaced = [text.encode("utf-16", "surrogatepass").decode("utf-16", "replace") for text in texts]
    assert results == released_predictor.predict(replaced)


def test_surrogate_pairs_written_as_two_code_points_are_one_character(released_predictor):
    assert released_predictor.predict(["\ud83d\ude00 fine \ud800"]) == released_predictor.predict(["😀 fine \ufffd"])
    assert released_predictor.logits(["\ud800"]).tolist() == released_predictor.logits(["\ufffd"]).tolist()


@settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(arguments=st.lists(st.binary(max_size=40), min_size=1, max_size=3), lines=st.lists(st.binary(max_size=40), max_size=3))
@example(arguments=[b"\xff\xfe", b"fine"], lines=[b"\xed\xa0\x80"])
@example(arguments=[b"nul \x00 inside"], lines=[b"nul \x00 inside", b"\xc3\xa9t\xc3\xa9"])
def test_the_predict_command_takes_any_bytes_or_refuses_them_in_one_line(capsys, tmp_path, arguments, lines):
    """Arguments as the OS hands them over (undecodable bytes as surrogates), lines of a --file."""
    arguments = [argument for argument in arguments if not argument.startswith(b"-")]  # options, not texts
    texts = [os.fsdecode(argument) for argument in arguments]
    path = tmp_path / "texts.txt"
    path.write_bytes(b"".join(line.replace(b"\n", b" ").replace(b"\r", b" ") + b"\n" for line in lines))
    argv = ["--checkpoint", str(BACKENDS["pytorch"]), *texts] + (["--file", str(path)] if lines else [])
    undecodable = [n for n, a in enumerate(arguments, 1) if not is_utf8(a)]
    bad_lines = [n for n, line in enumerate(lines, 1) if not is_utf8(line)]
    from textcnn.cli import predict

    if undecodable or bad_lines:
        with pytest.raises(UserInputError) as error:
            predict(argv)
        expected = f"text argument {undecodable[0]} " if undecodable else f"line {bad_lines[0]} "
        assert expected in str(error.value) and "UTF-8" in str(error.value)
    elif arguments or lines:
        assert predict(argv) == len(arguments) + len(lines)
        printed = [json.loads(line) for line in capsys.readouterr().out.splitlines()]
        assert len(printed) == len(arguments) + len(lines)
        assert all(p["label"] in ("negative", "positive") for p in printed)
    capsys.readouterr()


def is_utf8(data: bytes) -> bool:
    try:
        data.decode("utf-8")
    except UnicodeDecodeError:
        return False
    return True


@pytest.mark.slow
def test_an_argument_of_invalid_utf8_is_one_error_line(tmp_path):
    result = subprocess.run(
        [sys.executable, "-m", "textcnn", "predict", "--checkpoint", str(BACKENDS["onnx"]),
         "fine", os.fsdecode(b"broken \xff\xfe")],
        capture_output=True, timeout=120,
    )
    stderr = result.stderr.decode()
    assert result.returncode == 2 and "Traceback" not in stderr, stderr
    assert stderr.strip().splitlines()[-1].startswith("error: text argument 2 is not valid UTF-8")
    bad = tmp_path / "bad.jsonl"
    bad.write_bytes(b'{"text": "fine"}\n{"text": "broken \xff"}\n')
    result = subprocess.run(
        [sys.executable, "-m", "textcnn", "predict", "--checkpoint", str(BACKENDS["onnx"]), "--input", str(bad)],
        capture_output=True, timeout=120,
    )
    stderr = result.stderr.decode()
    assert result.returncode == 2 and "Traceback" not in stderr, stderr
    assert stderr.strip().splitlines()[-1].startswith(f"error: cannot read {bad} as json: Invalid UTF8")


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
        [sys.executable, "-m", "textcnn", "predict", "--checkpoint", str(checkpoint), "--file", str(path)],
        capture_output=True, timeout=120,
    )
    assert result.returncode == 0, result.stderr.decode()[-2000:]
    outputs = [json.loads(line) for line in result.stdout.decode().splitlines()]
    assert len(outputs) == len(lines)
    assert_valid(outputs, ["negative", "positive"])


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(texts=st.lists(st.text(alphabet=ANY_CHARACTER, max_size=300), min_size=1, max_size=4))
@example(texts=ODD_TEXTS)
@example(texts=["fine", "\ud800"])
def test_the_http_service_answers_any_unicode(service, texts):
    url, client, max_chars = service
    assert_answers(client, url, max_chars, texts)


def assert_answers(client, url, max_chars, texts):
    """413 for a text over the limit, 422 for one holding a lone surrogate, predictions otherwise."""
    body = json.dumps({"texts": texts}).encode()  # ASCII: surrogates as \ud800 escapes
    response = client.post(f"{url}/predict", content=body, headers={"content-type": "application/json"})
    if any(len(text) > max_chars for text in texts):
        assert response.status_code == 413 and "characters" in response.json()["detail"]
    elif any(has_surrogate(text) for text in texts):
        index = next(i for i, text in enumerate(texts) if has_surrogate(text))
        assert response.status_code == 422, response.text
        assert response.json()["detail"].startswith(f"text {index} holds a lone surrogate")
    else:
        assert response.status_code == 200, response.text
        assert_valid(response.json()["predictions"], ["negative", "positive"])


@pytest.fixture(scope="module")
def service(predictor):
    with serving(predictor) as running_service:
        yield running_service


@pytest.fixture(scope="module")
def released_service(released_predictor):
    with serving(released_predictor) as running_service:
        yield running_service


@contextlib.contextmanager
def serving(predictor, max_chars: int = 200):
    import httpx

    from tests.test_serve import running
    from textcnn.inference.serve import create_app

    with running(create_app(predictor, max_texts=16, max_chars=max_chars)) as url, httpx.Client(timeout=30) as client:
        yield url, client, max_chars


@settings(max_examples=40, deadline=None)
@given(texts=st.lists(st.text(alphabet=ANY_CHARACTER, max_size=250), min_size=1, max_size=4))
@example(texts=SURROGATE_TEXTS)
def test_every_backend_serves_any_unicode(released_service, texts):
    url, client, max_chars = released_service
    assert_answers(client, url, max_chars, texts)


@settings(max_examples=60, deadline=None)
@given(raw=st.binary(max_size=100))
@example(raw=b"\xff\xfe")
@example(raw=b"\xed\xa0\x80")  # a surrogate encoded as UTF-8 bytes (CESU-8)
@example(raw=b"nul \x00")
def test_any_bytes_in_a_request_body_get_an_answer_never_400_or_500(released_service, raw):
    url, client, _ = released_service
    response = client.post(f"{url}/predict", content=b'{"texts": ["' + raw + b'"]}',
                           headers={"content-type": "application/json"})
    assert response.status_code in (200, 422), response.text
    if response.status_code == 422:
        assert response.json()["detail"] and "\n" not in response.json()["detail"]
    if not is_utf8(raw):
        assert response.status_code == 422


@pytest.mark.parametrize("port", ["99999", "-1", "65536"])
def test_a_port_out_of_range_is_one_error_line(port, capsys):
    from textcnn.cli import serve_main

    with pytest.raises(SystemExit) as exited:
        serve_main(["--checkpoint", str(BACKENDS["onnx"]), "--port", port])
    assert exited.value.code == 2
    assert capsys.readouterr().err.strip().splitlines()[-1] == (
        f"error: --port must be between 0 and 65535 (0: any free port), got {port}")


# -- slow and oversized clients (raw sockets on loopback, every loop bounded) --------------------------
@contextlib.contextmanager
def quick_server(header_timeout_s: float = 1.0, body_timeout_s: float = 1.0):
    from tests.test_serve import running
    from textcnn.inference.serve import SLOW_CLIENT_LIMITS, create_app
    from textcnn.inference.slow_clients import HeaderDeadline

    protocol = type("QuickHeaderDeadline", (HeaderDeadline,), {"header_timeout_s": header_timeout_s})
    app = create_app(textcnn.load(BACKENDS["onnx"]), body_timeout_s=body_timeout_s)
    with running(app, **{**SLOW_CLIENT_LIMITS, "http": protocol, "timeout_keep_alive": 1}) as url:
        yield int(url.rsplit(":", 1)[1])


def read_until_closed(sock, limit_s: float) -> bytes:
    sock.settimeout(limit_s)
    data = b""
    with contextlib.suppress(ConnectionResetError):
        while chunk := sock.recv(65536):
            data += chunk
    return data


def test_a_chunked_body_over_the_limit_is_refused_as_it_arrives():
    """No Content-Length: the server counts the bytes and answers 413 long before 300 MB are read."""
    import select
    import socket

    chunk = b"x" * 65536
    with quick_server() as port, socket.create_connection(("127.0.0.1", port)) as sock:
        sock.sendall(b"POST /predict HTTP/1.1\r\nHost: t\r\nContent-Type: application/json\r\n"
                     b"Transfer-Encoding: chunked\r\n\r\nc\r\n{\"texts\": [\"\r\n")
        sent, answer = 0, b""
        while sent < 300 * 2**20 and not answer:
            if select.select([sock], [], [], 0)[0]:
                answer = read_until_closed(sock, 5)
                break
            try:
                sock.sendall(b"%x\r\n%s\r\n" % (len(chunk), chunk))
            except OSError:  # the server answered and closed while we were sending
                answer = read_until_closed(sock, 5)
                break
            sent += len(chunk)
    assert answer.startswith(b"HTTP/1.1 413"), answer[:200]
    assert b"over the limit of" in answer
    assert sent < 64 * 2**20  # the limit is about 4 MB; the rest sat in socket buffers


def test_a_body_sent_too_slowly_gets_408():
    import socket

    with quick_server(body_timeout_s=1.0) as port, socket.create_connection(("127.0.0.1", port)) as sock:
        start = time.monotonic()
        sock.sendall(b"POST /predict HTTP/1.1\r\nHost: t\r\nContent-Type: application/json\r\n"
                     b"Content-Length: 100\r\n\r\n{\"texts\": [")
        answer = read_until_closed(sock, 10)
        waited = time.monotonic() - start
    assert answer.startswith(b"HTTP/1.1 408"), answer[:200]
    assert b"did not arrive within 1 s" in answer and 0.9 < waited < 5


def test_headers_sent_a_byte_at_a_time_are_cut_off():
    """A slowloris client: one header byte every 0.1 s never completes a request; the server closes."""
    import socket

    with quick_server(header_timeout_s=1.0) as port, socket.create_connection(("127.0.0.1", port)) as sock:
        closed, start = None, time.monotonic()
        sock.sendall(b"POST /predict HTTP/1.1\r\n")
        for _ in range(100):  # up to 10 s
            try:
                sock.sendall(b"X")
            except OSError:
                closed = time.monotonic() - start
                break
            sock.settimeout(0.1)
            try:
                if sock.recv(1024) == b"":
                    closed = time.monotonic() - start
                    break
            except socket.timeout:
                pass
    assert closed is not None and 0.9 < closed < 5, closed


def test_pipelined_requests_are_all_answered_and_the_idle_connection_closed_after():
    """Requests sent back to back before any answer: the header deadline counts each as it arrives."""
    import socket

    body = b'{"texts": ["fine"]}'
    request = (b"POST /predict HTTP/1.1\r\nHost: t\r\nContent-Type: application/json\r\n"
               b"Content-Length: %d\r\n\r\n%s" % (len(body), body))
    with quick_server(header_timeout_s=1.0) as port, socket.create_connection(("127.0.0.1", port)) as sock:
        sock.sendall(request * 3)
        start = time.monotonic()
        answer = read_until_closed(sock, 10)
    assert answer.count(b"HTTP/1.1 200") == 3, answer[:500]
    assert time.monotonic() - start < 8  # then closed: no fourth request came


def test_an_idle_connection_and_a_normal_request_still_work():
    import socket

    import httpx

    with quick_server(header_timeout_s=1.0) as port:
        with socket.create_connection(("127.0.0.1", port)) as idle:
            start = time.monotonic()
            assert read_until_closed(idle, 10) == b""  # closed by the server, not by our timeout
            assert time.monotonic() - start < 5
        with httpx.Client() as client:  # keep-alive: the second request reuses the connection
            for _ in range(2):
                response = client.post(f"http://127.0.0.1:{port}/predict", json={"texts": ["fine"]})
                assert response.status_code == 200
