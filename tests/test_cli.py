"""The commands as a user runs them (``python -m textcnn COMMAND``): separate processes, real files, real data."""

import json
import os
import re
import shutil
import subprocess
import sys

import pytest

from tests.conftest import ROOT, TINY_MODEL_ARGS, write_slice


def run(command: str, *args: str, cwd=ROOT, stdin: bytes | None = None) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, "-m", "textcnn", command, *args],
        cwd=cwd, input=stdin, capture_output=True, timeout=300,
        env={**os.environ, "PYTHONUNBUFFERED": "1"},
    )


def assert_one_line_error(result: subprocess.CompletedProcess, *fragments: str) -> None:
    stderr = result.stderr.decode()
    assert result.returncode == 2, stderr
    assert "Traceback" not in stderr
    last = stderr.strip().splitlines()[-1]
    assert last.startswith("error:"), stderr
    for fragment in fragments:
        assert fragment in last


@pytest.fixture(scope="module")
def trained_by_script(tmp_path_factory) -> dict:
    data = write_slice("sst2", tmp_path_factory.mktemp("data") / "sst2_small", {"train": 600, "validation": 150, "test": 200})
    root = tmp_path_factory.mktemp("runs")
    result = run("train", "--config", "configs/sst2.yaml", *TINY_MODEL_ARGS, f"--data.path={data}",
                 "--trainer.max_epochs=1", f"--trainer.default_root_dir={root}")
    assert result.returncode == 0, result.stderr.decode()[-3000:]
    report = json.loads(result.stdout)
    assert f"best checkpoint: {report['checkpoint']}" in result.stderr.decode()
    return {"report": report, "data": data, "root": root}


# What must never reach a user's console: warnings of any kind, Lightning's banners and tips, its
# model-summary table (whose FLOP count read 0), and tracebacks.
NOISE = re.compile(r"warn|deprecat|tip:|💡|litlogger|gpu available|tpu available|hpu available|flops|local_rank|"
                   r"trainable params|\| name|traceback|`trainer\.fit` stopped", re.IGNORECASE)


def test_a_training_run_prints_only_its_own_lines_the_progress_bar_and_results(tmp_path):
    data = write_slice("sst2", tmp_path / "sst2", {"train": 300, "validation": 100, "test": 100})
    tiny = [arg for arg in TINY_MODEL_ARGS if not arg.startswith(("--trainer.enable_progress_bar",
                                                                   "--trainer.enable_model_summary"))]
    result = subprocess.run([sys.executable, "-m", "textcnn", "train", *tiny, f"--data.path={data}",
                             "--trainer.max_epochs=1", f"--trainer.default_root_dir={tmp_path / 'runs'}"],
                            cwd=tmp_path, capture_output=True, timeout=300, env={**os.environ, "PYTHONUNBUFFERED": "1"})
    stderr = result.stderr.decode()
    assert result.returncode == 0, stderr[-3000:]
    assert json.loads(result.stdout)["split"] == "test"  # stdout is the metrics alone
    lines = [line.strip() for line in re.split(r"[\r\n]", stderr) if line.strip()]
    noisy = [line for line in lines if NOISE.search(line)]
    assert not noisy, noisy
    assert any(line.startswith("model: textcnn") and "parameters" in line for line in lines), lines
    assert any(line.startswith("Epoch 0:") for line in lines), lines  # the progress bar
    assert any(line.startswith("calibration: temperature") for line in lines), lines
    assert any(line.startswith("abstaining (predict --min-precision P") for line in lines), lines
    assert lines[-1].startswith("trained 1 of 1 epochs (trainer.max_epochs reached); best epoch 0: val_acc "), lines


def test_train_prints_the_best_checkpoint_and_test_metrics(trained_by_script):
    report = trained_by_script["report"]
    assert report["split"] == "test" and report["num_examples"] == 200
    assert 0.0 <= report["accuracy"] <= 1.0 and "macro_f1" in report
    assert str(trained_by_script["root"]) in report["checkpoint"]


def test_evaluate_reproduces_the_training_metrics(trained_by_script):
    report = trained_by_script["report"]
    result = run("evaluate", "--checkpoint", report["checkpoint"], "--split", "test")
    assert result.returncode == 0, result.stderr.decode()[-3000:]
    evaluated = json.loads(result.stdout)
    # train scores with its own data module, evaluate rebuilds it from the checkpoint: same report
    # (train also saved the validation risk-coverage table into the checkpoint)
    report = {**report, "abstaining": dict(report["abstaining"])}
    assert report["abstaining"].pop("saved_to") == report["checkpoint"]
    assert evaluated == report and evaluated["num_examples"] == 200
    assert set(evaluated["per_class"]["positive"]) == {"precision", "recall", "f1", "support"}


def test_evaluate_accepts_data_overrides(trained_by_script, sst2_dir):
    checkpoint = trained_by_script["report"]["checkpoint"]
    result = run("evaluate", "--checkpoint", checkpoint, f"--data.path={sst2_dir}", "--split", "validation")
    assert result.returncode == 0, result.stderr.decode()[-3000:]
    assert json.loads(result.stdout)["num_examples"] == 872


def test_predict_needs_only_the_checkpoint(trained_by_script, tmp_path):
    checkpoint = tmp_path / "model.ckpt"
    shutil.copy(trained_by_script["report"]["checkpoint"], checkpoint)
    shutil.rmtree(trained_by_script["data"])  # the dataset is gone
    from_args = run("predict", "--checkpoint", str(checkpoint), "a warm , funny film", "dull and lifeless", cwd=tmp_path)
    assert from_args.returncode == 0, from_args.stderr.decode()[-3000:]
    lines = [json.loads(line) for line in from_args.stdout.decode().splitlines()]
    assert [line["text"] for line in lines] == ["a warm , funny film", "dull and lifeless"]
    assert all(line["label"] in line["probabilities"] for line in lines)

    texts = tmp_path / "texts.txt"
    texts.write_text("a warm , funny film\ndull and lifeless\n", encoding="utf-8")
    from_file = run("predict", "--checkpoint", str(checkpoint), "--file", str(texts), cwd=tmp_path)
    from_stdin = run("predict", "--checkpoint", str(checkpoint), cwd=tmp_path, stdin=texts.read_bytes())
    assert from_file.stdout == from_stdin.stdout == from_args.stdout


def test_errors_are_one_line_with_a_fix(tmp_path, sst2_dir, trained_by_script):
    assert_one_line_error(
        run("train", "--config", "configs/sst2.yaml", f"--data.path={sst2_dir}", "--data.label_column=stars",
            f"--trainer.default_root_dir={tmp_path}"),
        "data.label_column 'stars'",
    )
    assert_one_line_error(
        run("train", "--config", "configs/sst2.yaml", "--data.path=no-such-org/no-such-dataset",
            f"--trainer.default_root_dir={tmp_path}"),
        "no-such-org/no-such-dataset",
    )
    assert_one_line_error(run("evaluate", "--checkpoint", str(tmp_path / "nope.ckpt")), "does not exist")
    assert_one_line_error(run("predict", "--checkpoint", str(tmp_path / "nope.ckpt"), "hi"), "does not exist")
    checkpoint = trained_by_script["report"]["checkpoint"]
    assert_one_line_error(run("predict", "--checkpoint", checkpoint, stdin=b""), "no texts")
    bad = tmp_path / "bad.txt"
    bad.write_bytes(b"fine\n\xff\xfe broken\n")
    assert_one_line_error(run("predict", "--checkpoint", checkpoint, "--file", str(bad)), "line 2")


@pytest.mark.slow
def test_unknown_config_keys_are_rejected(tmp_path):
    result = run("train", "--config", "configs/sst2.yaml", "--model.network.no_such_field=3",
                 f"--trainer.default_root_dir={tmp_path}")
    assert result.returncode != 0 and "no_such_field" in result.stderr.decode()


@pytest.mark.parametrize("command", ["train", "evaluate", "predict", "export", "serve", "tune", "push-to-hub"])
def test_each_commands_help_names_it_and_states_each_default_once(command):
    result = subprocess.run([sys.executable, "-m", "textcnn", command, "--help"], capture_output=True, text=True,
                            timeout=120, env={**os.environ, "COLUMNS": "200"})
    assert result.returncode == 0, result.stderr
    assert result.stdout.startswith(f"usage: textcnn {command} "), result.stdout[:200]
    for line in result.stdout.splitlines():
        assert len(re.findall(r"\(default: ", line)) <= 1 and "default: ?" not in line, line
    if command == "predict":  # texts come from arguments, a file or stdin: none of them is required
        texts = next(line for line in result.stdout.splitlines() if line.lstrip().startswith("texts "))
        assert "required" not in texts


def test_textcnn_help_lists_the_commands_and_exits_0(capsys):
    from textcnn.cli import main

    main(["--help"])
    out = capsys.readouterr().out
    assert all(command in out for command in ("train", "evaluate", "predict", "export", "serve"))
    with pytest.raises(SystemExit) as exited:
        main(["nonsense"])
    assert exited.value.code == 2


@pytest.mark.parametrize("ending, code", [("pass", 0), ("sys.exit(2)", 2), ("sys.exit('stopped: why')", 1)])
def test_the_fast_exit_still_flushes_joins_threads_and_runs_atexit(ending, code):
    script = (
        "import atexit, sys, threading, time\n"
        "from textcnn.cli import exit_after\n"
        "atexit.register(lambda: print('atexit ran'))\n"
        "def entry():\n"
        "    threading.Thread(target=lambda: (time.sleep(0.3), print('thread done'))).start()\n"
        "    print('output', end='')\n"
        f"    {ending}\n"
        "exit_after(entry)\n"
    )
    result = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, timeout=60)
    assert result.returncode == code
    assert result.stdout.startswith("output") and "thread done" in result.stdout and "atexit ran" in result.stdout
    assert ("stopped: why" in result.stderr) == (code == 1)


def test_a_reader_that_leaves_early_ends_predict_quietly(trained_by_script, tmp_path):
    texts = tmp_path / "texts.txt"
    texts.write_text("a fine film\n" * 50_000, encoding="utf-8")
    process = subprocess.Popen([sys.executable, "-m", "textcnn", "predict", "--checkpoint",
                                trained_by_script["report"]["checkpoint"], "--file", str(texts)],
                               stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    assert b'"label"' in process.stdout.readline()  # like `| head -1`
    process.stdout.close()
    stderr = process.stderr.read().decode()
    assert process.wait(timeout=120) == 1
    assert "Traceback" not in stderr and "Exception ignored" not in stderr, stderr
