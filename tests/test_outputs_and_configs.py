"""Commands that write never lose what the user had, and configs cannot make the parser blow up.

Outputs are checked before the work starts, never one of the command's inputs, and written
atomically (a failed write leaves the old file whole); a full disk ends in one line that names the
path. The disk-full cases run in a private mount namespace with a tiny tmpfs, where the machine allows."""

from __future__ import annotations

import shlex
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

import textcnn
from textcnn.config_loader import MAX_MESSAGE_LINE, excerpt, expanded_size
from tests.conftest import ROOT, TINY_MODEL_ARGS, write_slice

FIXTURES = Path(__file__).parent / "fixtures" / "textcnn-0.1.0"
CHECKPOINT = FIXTURES / "sst2_tiny.ckpt"


def textcnn_command(*args: str, cwd: Path = ROOT) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "textcnn", *args], cwd=cwd, capture_output=True, text=True,
                          timeout=300)


def last_line_error(result: subprocess.CompletedProcess) -> str:
    assert result.returncode == 2, result.stderr[-2000:]
    assert "Traceback" not in result.stderr, result.stderr[-2000:]
    line = result.stderr.strip().splitlines()[-1]
    assert line.startswith("error: "), result.stderr[-2000:]
    return line


def test_predict_refuses_to_write_its_page_over_its_input(tmp_path):
    texts = tmp_path / "texts.txt"
    texts.write_text("a fine film\na dull film\n", encoding="utf-8")
    line = last_line_error(textcnn_command("predict", "--checkpoint", str(CHECKPOINT), "--file", str(texts),
                                           "--html", str(texts)))
    assert "--html" in line and "is also an input" in line
    assert texts.read_text(encoding="utf-8") == "a fine film\na dull film\n"  # the user's data is there


def test_predict_checks_the_page_path_before_it_predicts(tmp_path):
    blocker = tmp_path / "a-file"
    blocker.write_text("not a directory", encoding="utf-8")
    result = textcnn_command("predict", "--checkpoint", str(CHECKPOINT), "--html", str(blocker / "page.html"),
                             "a fine film")
    assert "--html" in last_line_error(result) and result.stdout == ""  # nothing was predicted


def test_the_streamed_page_is_the_whole_page(tmp_path):
    texts = [f"a fine film number {index}" for index in range(30)] + ["a <script>alert(1)</script> film"]
    (tmp_path / "texts.txt").write_text("\n".join(texts) + "\n", encoding="utf-8")
    page = tmp_path / "page.html"
    result = textcnn_command("predict", "--checkpoint", str(CHECKPOINT), "--file", str(tmp_path / "texts.txt"),
                             "--html", str(page), "--top-ngrams", "3")
    assert result.returncode == 0, result.stderr[-2000:]
    from textcnn.inference.explain import to_html

    assert page.read_text(encoding="utf-8") == to_html(textcnn.load(CHECKPOINT).explain(texts), 3)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["page.html", "texts.txt"]  # no temporary file left


def test_a_model_directory_export_never_replaces_the_users_files_unless_forced(tmp_path):
    output = tmp_path / "model"
    output.mkdir()
    (output / "README.md").write_text("my notes", encoding="utf-8")
    (output / "config.json").write_text('{"mine": true}', encoding="utf-8")
    (output / "other.txt").write_text("keep me", encoding="utf-8")
    line = last_line_error(textcnn_command("export", "--checkpoint", str(CHECKPOINT), "--format", "hf",
                                           "--output", str(output)))
    assert "config.json, README.md, which textcnn did not write" in line and "--force" in line
    assert (output / "README.md").read_text(encoding="utf-8") == "my notes"
    assert not (output / "model.safetensors").exists()

    forced = textcnn_command("export", "--checkpoint", str(CHECKPOINT), "--format", "hf", "--output", str(output),
                             "--force")
    assert forced.returncode == 0, forced.stderr[-2000:]
    assert (output / "other.txt").read_text(encoding="utf-8") == "keep me"  # never deleted
    assert textcnn.load(output).predict(["a fine film"])[0]["label"] in ("negative", "positive")
    again = textcnn_command("export", "--checkpoint", str(CHECKPOINT), "--format", "hf", "--output", str(output))
    assert again.returncode == 0, again.stderr[-2000:]  # its own earlier export is replaced without --force


def alias_bomb(levels: int = 7) -> str:
    lines = ['_a0: &a0 ["lol","lol","lol","lol","lol","lol","lol","lol","lol"]']
    lines += [f"_a{i}: &a{i} [{', '.join([f'*a{i - 1}'] * 9)}]" for i in range(1, levels + 1)]
    return "\n".join(lines) + f"\ndata:\n  label_names: *a{levels}\n"


def test_a_yaml_alias_bomb_is_refused_in_one_line_before_it_expands(tmp_path):
    config = tmp_path / "bomb.yaml"
    config.write_text(alias_bomb(), encoding="utf-8")
    assert len(config.read_text()) < 600 and expanded_size(config.read_text()) > 10 * 2**20
    result = textcnn_command("train", "--config", str(config), f"--trainer.default_root_dir={tmp_path}")
    line = last_line_error(result)
    assert "YAML aliases" in line and len(result.stderr) < 5000


def test_ordinary_aliases_still_load(tmp_path):
    from textcnn.config_loader import bounded_load

    assert bounded_load("widths: &w [3, 4, 5]\nagain: *w\nrate: 1e-3\n") == {
        "widths": [3, 4, 5], "again": [3, 4, 5], "rate": 0.001}


def test_error_messages_quote_a_long_value_as_an_excerpt():
    message = excerpt("Given value: " + "x" * 100_000 + "\nshort line")
    first, second = message.splitlines()
    assert len(first) < MAX_MESSAGE_LINE + 40 and "more characters" in first and second == "short line"
    result = textcnn_command("train", f"--trainer.max_epochs={'x' * 100_000}")
    assert result.returncode == 2 and len(result.stderr) < 20_000


# -- a full disk: a tmpfs of a few hundred kilobytes in a mount namespace of the test's own ----------
def in_small_filesystem(script: str, size: str) -> subprocess.CompletedProcess:
    """``script`` (bash) with a fresh ``size`` tmpfs mounted at $SMALL, in a private mount namespace."""
    if shutil.which("unshare") is None:
        pytest.skip("no unshare: the disk-full cases need a private mount namespace")
    probe = subprocess.run(["unshare", "-m", "true"], capture_output=True)
    if probe.returncode != 0:
        pytest.skip(f"no private mount namespace here ({probe.stderr.decode().strip()[:100]})")
    wrapped = f"set -e; SMALL=$(mktemp -d); mount -t tmpfs -o size={size} tmpfs $SMALL; export SMALL; set +e\n{script}"
    return subprocess.run(["unshare", "-m", "bash", "-c", wrapped], cwd=ROOT, capture_output=True, text=True,
                          timeout=600)


@pytest.mark.slow
def test_training_on_a_full_disk_ends_in_one_line_naming_the_path(tmp_path):
    data = write_slice("sst2", tmp_path / "sst2", {"train": 200, "validation": 50, "test": 50})
    args = shlex.join([*TINY_MODEL_ARGS, f"--data.path={data}", "--trainer.max_epochs=1"])
    result = in_small_filesystem(
        f"{sys.executable} -m textcnn train {args} --trainer.default_root_dir=$SMALL/runs; echo status=$?", "200k")
    assert "status=2" in result.stdout, result.stderr[-3000:]
    line = result.stderr.strip().splitlines()[-1]
    assert line.startswith("error: cannot write to ") and "No space left on device" in line, result.stderr[-3000:]
    assert "Traceback" not in result.stderr


@pytest.mark.slow
def test_an_onnx_export_that_fills_the_disk_leaves_the_earlier_export_whole(tmp_path):
    pytest.importorskip("onnx")
    script = (
        f"{sys.executable} -m textcnn export --checkpoint {CHECKPOINT} --output $SMALL/onnx > /dev/null\n"
        "cp $SMALL/onnx/model.onnx $SMALL/before.onnx\n"
        "head -c $(( $(df --output=avail -B1 $SMALL | tail -1) - 4096 )) /dev/zero > $SMALL/filler || true\n"
        f"{sys.executable} -m textcnn export --checkpoint {CHECKPOINT} --output $SMALL/onnx > /dev/null "
        "|| echo status=$?\n"
        "cmp $SMALL/before.onnx $SMALL/onnx/model.onnx && echo unchanged\n"
        "ls -a $SMALL/onnx\n"
        f"{sys.executable} -c \"import textcnn; print(textcnn.load('$SMALL/onnx').predict(['a fine film'])[0]['label'])\""
    )
    result = in_small_filesystem(script, "4m")
    assert "status=2" in result.stdout and "unchanged" in result.stdout, result.stdout + result.stderr[-3000:]
    assert "No space left on device" in result.stderr and "Traceback" not in result.stderr.split("unchanged")[0]
    assert not any(name.endswith(".tmp") for name in result.stdout.split()), result.stdout  # nothing left behind
    assert result.stdout.strip().splitlines()[-1] in ("negative", "positive"), result.stdout + result.stderr[-2000:]
