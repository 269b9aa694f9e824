"""The Hugging Face Hub: an id loads from the local cache offline, an unreachable Hub is one line in
seconds (load and push), and pushing goes through huggingface_hub's create_repo and upload_folder."""

from __future__ import annotations

import hashlib
import json
import os
import socket
import subprocess
import sys
import time
from pathlib import Path

import huggingface_hub
import pytest

import textcnn
from tests.conftest import ROOT
from textcnn import cli
from textcnn.errors import UserInputError
from textcnn.inference.hub import looks_like_hub_id
from textcnn.inference.predictor import Predictor

FIXTURES = Path(__file__).parent / "fixtures" / "textcnn-0.1.0"
REPO_ID, COMMIT = "textcnn-tests/sst2-tiny", "0123456789abcdef0123456789abcdef01234567"
TEXTS = ["a gripping , funny film", "dull and far too long", ""]
SECONDS = 10  # what "fails within seconds" means here


@pytest.fixture(scope="module")
def model_dir(tmp_path_factory) -> Path:
    directory = tmp_path_factory.mktemp("model") / "sst2-tiny"
    Predictor.from_checkpoint(FIXTURES / "sst2_tiny.ckpt").save(directory, repo_id=REPO_ID)
    return directory


@pytest.fixture(scope="module")
def hub_cache(model_dir, tmp_path_factory) -> Path:
    """A cache as snapshot_download leaves it: blobs named by their sha256, a snapshot of symlinks to
    them under the commit, and refs/main naming the commit."""
    cache = tmp_path_factory.mktemp("hf_cache")
    repo = cache / ("models--" + REPO_ID.replace("/", "--"))
    snapshot = repo / "snapshots" / COMMIT
    (repo / "blobs").mkdir(parents=True)
    snapshot.mkdir(parents=True)
    for path in model_dir.iterdir():
        data = path.read_bytes()
        blob = hashlib.sha256(data).hexdigest()
        (repo / "blobs" / blob).write_bytes(data)
        (snapshot / path.name).symlink_to(Path("..", "..", "blobs", blob))
    (repo / "refs").mkdir()
    (repo / "refs" / "main").write_text(COMMIT)
    return cache


def closed_port() -> int:
    """A loopback port nothing listens on: connecting is refused at once, as on a machine without a network."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def run_python(code: str, **env: str) -> subprocess.CompletedProcess:
    """``code`` in a fresh interpreter, where huggingface_hub reads these environment variables at import."""
    return subprocess.run([sys.executable, "-c", code], cwd=ROOT, capture_output=True, text=True, timeout=120,
                          env={**os.environ, **env})


LOAD = (
    "import json, sys, time, textcnn\n"
    "began = time.perf_counter()\n"
    "try:\n"
    f"    predictor = textcnn.load({REPO_ID!r})\n"
    "except textcnn.UserInputError as error:\n"
    "    print(json.dumps({'error': str(error), 'seconds': time.perf_counter() - began})); sys.exit(0)\n"
    f"print(json.dumps({{'predictions': predictor.predict({TEXTS!r}), 'seconds': time.perf_counter() - began}}))\n"
)


def test_strings_that_look_like_hub_ids():
    assert looks_like_hub_id("alice/sst2-textcnn") and looks_like_hub_id("SetFit/sst2.v2")
    for text in ("runs/a/b", "model.ckpt", "alice/model.ckpt", "/abs/path", "./x", "a--b/c", "alice", "a/b/"):
        assert not looks_like_hub_id(text), text


@pytest.mark.parametrize("how", ["HF_HUB_OFFLINE=1", "Hub unreachable"])
def test_a_hub_id_in_the_local_cache_loads_without_the_hub(how, hub_cache, model_dir):
    env = {"HF_HUB_CACHE": str(hub_cache)}
    env.update({"HF_HUB_OFFLINE": "1"} if how == "HF_HUB_OFFLINE=1" else
               {"HF_HUB_OFFLINE": "0", "HF_ENDPOINT": f"http://127.0.0.1:{closed_port()}"})
    result = run_python(LOAD, **env)
    assert result.returncode == 0, result.stderr[-2000:]
    answer = json.loads(result.stdout.strip().splitlines()[-1])
    assert "error" not in answer, answer
    assert answer["predictions"] == json.loads(json.dumps(textcnn.load(model_dir).predict(TEXTS)))
    assert answer["seconds"] < SECONDS


@pytest.mark.parametrize("how", ["HF_HUB_OFFLINE=1", "Hub unreachable", "the default Hub"])
def test_a_hub_id_that_cannot_be_had_fails_in_seconds_with_one_line(how, tmp_path):
    env = {"HF_HUB_CACHE": str(tmp_path / "empty_cache")}
    if how == "HF_HUB_OFFLINE=1":
        env["HF_HUB_OFFLINE"] = "1"
    elif how == "Hub unreachable":
        env.update(HF_HUB_OFFLINE="0", HF_ENDPOINT=f"http://127.0.0.1:{closed_port()}")
    else:  # here: no network; elsewhere: the real Hub, which has no such model
        env["HF_HUB_OFFLINE"] = "0"
    result = run_python(LOAD, **env)
    assert result.returncode == 0, result.stderr[-2000:]
    answer = json.loads(result.stdout.strip().splitlines()[-1])
    assert answer["seconds"] < SECONDS and "\n" not in answer["error"]
    assert answer["error"].startswith(f"{REPO_ID} is ")  # names the id, then why: not cached, or not on the Hub
    if how == "HF_HUB_OFFLINE=1":
        assert "HF_HUB_OFFLINE is set" in answer["error"]


@pytest.mark.parametrize("how", ["HF_HUB_OFFLINE=1", "Hub unreachable"])
def test_pushing_without_the_hub_fails_in_seconds_with_exit_status_2(how, model_dir):
    env = {"HF_HUB_OFFLINE": "1"} if how == "HF_HUB_OFFLINE=1" else {
        "HF_HUB_OFFLINE": "0", "HF_ENDPOINT": f"http://127.0.0.1:{closed_port()}"}
    began = time.perf_counter()
    result = subprocess.run([sys.executable, "-m", "textcnn", "push-to-hub", "--checkpoint", str(model_dir),
                             "--repo-id", REPO_ID, "--token", "hf_not_a_token"], cwd=ROOT, capture_output=True,
                            text=True, timeout=120, env={**os.environ, **env})
    assert time.perf_counter() - began < SECONDS + 10  # the interpreter's start-up (torch) on top
    assert result.returncode == 2, result.stderr[-2000:]
    [line] = result.stderr.strip().splitlines()
    assert line.startswith("error: ") and ("HF_HUB_OFFLINE is set" in line or "the Hub cannot be reached" in line)


def test_push_to_hub_creates_the_repository_and_uploads_a_loadable_model_directory(monkeypatch, tmp_path):
    calls, uploaded = [], tmp_path / "uploaded"

    def model_info(self, repo_id, timeout=None, **kwargs):
        calls.append(("model_info", repo_id, timeout))

    def create_repo(repo_id, **kwargs):
        calls.append(("create_repo", repo_id, kwargs["private"], kwargs["exist_ok"], kwargs["token"]))

    def upload_folder(repo_id, folder_path, **kwargs):
        calls.append(("upload_folder", repo_id, kwargs["commit_message"]))
        uploaded.mkdir()
        for path in Path(folder_path).iterdir():
            (uploaded / path.name).write_bytes(path.read_bytes())
        return f"https://huggingface.co/{repo_id}/commit/{COMMIT}"

    monkeypatch.setattr(huggingface_hub.HfApi, "model_info", model_info)
    monkeypatch.setattr(huggingface_hub, "create_repo", create_repo)
    monkeypatch.setattr(huggingface_hub, "upload_folder", upload_folder)
    monkeypatch.setenv("HF_HUB_OFFLINE", "0")
    report = cli.push_to_hub(["--checkpoint", str(FIXTURES / "sst2_tiny.ckpt"), "--repo-id", REPO_ID,
                              "--token", "hf_secret", "--private", "--language", "en"])
    assert report == {"repo_id": REPO_ID, "commit": f"https://huggingface.co/{REPO_ID}/commit/{COMMIT}"}
    assert [call[0] for call in calls] == ["model_info", "create_repo", "upload_folder"]
    assert calls[0][2] is not None and calls[1][2:] == (True, True, "hf_secret")
    assert sorted(p.name for p in uploaded.iterdir()) == ["README.md", "config.json", "model.safetensors",
                                                         "tokenizer.json"]
    assert f'textcnn.load("{REPO_ID}")' in (uploaded / "README.md").read_text()
    checkpoint = textcnn.load(FIXTURES / "sst2_tiny.ckpt")
    assert textcnn.load(uploaded).predict(TEXTS) == checkpoint.predict(TEXTS)


def test_an_onnx_export_is_not_pushed(monkeypatch):
    monkeypatch.setenv("HF_HUB_OFFLINE", "0")
    with pytest.raises(UserInputError, match="is an ONNX export; push-to-hub takes the .ckpt"):
        cli.push_to_hub(["--checkpoint", str(FIXTURES / "sst2_tiny-onnx"), "--repo-id", REPO_ID])


def test_evaluate_scores_a_cached_hub_model(hub_cache):
    from tests.conftest import dataset_dir

    data = [f"--data.path={dataset_dir('sst2')}", "--split", "validation"]
    result = subprocess.run([sys.executable, "-m", "textcnn", "evaluate", "--checkpoint", REPO_ID, *data],
                            cwd=ROOT, capture_output=True, text=True, timeout=300,
                            env={**os.environ, "HF_HUB_CACHE": str(hub_cache), "HF_HUB_OFFLINE": "1"})
    assert result.returncode == 0, result.stderr[-2000:]
    report = json.loads(result.stdout)
    assert report["accuracy"] == cli.evaluate(["--checkpoint", str(FIXTURES / "sst2_tiny.ckpt"), *data])["accuracy"]
