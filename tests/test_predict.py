import csv
import io
import json
import select
import subprocess
import sys
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import datasets
import pytest
import torch

import textcnn
from textcnn import cli
from textcnn.inference import prediction_io
from textcnn.errors import UserInputError
from textcnn.training.module import TextCNNClassifier

TEXTS = ["a gorgeous , witty , seductive movie .", "it 's a bad , bad film", "!", "", "good " * 500]


def test_predictions_have_label_names_and_probabilities(checkpoint):
    results = textcnn.load(checkpoint).predict(TEXTS)
    assert len(results) == len(TEXTS)
    for result in results:
        assert result["label"] in ("negative", "positive")
        assert sum(result["probabilities"].values()) == pytest.approx(1.0, abs=1e-5)
        assert result["label"] == max(result["probabilities"], key=result["probabilities"].get)


def test_batch_and_single_text_predictions_agree(checkpoint):
    predictor = textcnn.load(checkpoint)
    together = predictor.predict_proba(TEXTS, batch_size=64)
    for i, text in enumerate(TEXTS):
        torch.testing.assert_close(predictor.predict_proba([text])[0], together[i], rtol=0, atol=1e-6)


def test_predictor_matches_the_lightning_module(checkpoint):
    predictor = textcnn.load(checkpoint)
    module = TextCNNClassifier.load_from_checkpoint(checkpoint, weights_only=True, map_location="cpu").eval()
    with torch.inference_mode():
        expected = module(predictor.batch(TEXTS))
    torch.testing.assert_close(predictor.logits(TEXTS), expected, rtol=0, atol=0)
    assert textcnn.load(checkpoint).predict(TEXTS) == predictor.predict(TEXTS)


def test_empty_and_non_string_inputs_are_refused(checkpoint):
    predictor = textcnn.load(checkpoint)
    with pytest.raises(UserInputError, match="no texts"):
        predictor.predict([])
    with pytest.raises(UserInputError, match="text 1 is int"):
        predictor.predict(["fine", 3])


def test_missing_corrupt_and_foreign_checkpoints_are_refused(checkpoint, tmp_path):
    with pytest.raises(UserInputError, match="does not exist"):
        textcnn.load(tmp_path / "missing.ckpt")
    truncated = tmp_path / "truncated.ckpt"
    truncated.write_bytes(checkpoint.read_bytes()[:5000])
    with pytest.raises(UserInputError, match="not a readable PyTorch checkpoint"):
        textcnn.load(truncated)
    foreign = tmp_path / "foreign.ckpt"
    torch.save({"weights": torch.zeros(2)}, foreign)
    with pytest.raises(UserInputError, match="not a textcnn checkpoint"):
        textcnn.load(foreign)


class _RunsCodeOnLoad:
    def __init__(self, marker):
        self.marker = marker

    def __reduce__(self):
        return (open, (str(self.marker), "w"))


def test_a_checkpoint_that_would_run_code_is_refused_without_running_it(tmp_path):
    marker = tmp_path / "pwned"
    crafted = tmp_path / "crafted.ckpt"
    with open(crafted, "wb") as handle:
        torch.save({"state_dict": _RunsCodeOnLoad(marker)}, handle)
    with pytest.raises(UserInputError, match="refusing to load"):
        textcnn.load(crafted)
    assert not marker.exists()


# -- batching, top-k, temperature, threads ------------------------------------------------------------

def sst2_texts(directory, split: str, count: int) -> list[str]:
    return datasets.load_dataset(str(directory))[split]["text"][:count]


def test_top_k_lists_the_most_probable_classes_first(checkpoint):
    predictor = textcnn.load(checkpoint)
    full, top = predictor.predict(TEXTS), predictor.predict(TEXTS, top_k=1)
    for everything, best in zip(full, top):
        assert list(best["probabilities"]) == [everything["label"]] == [best["label"]]
        assert best["probabilities"][best["label"]] == everything["probabilities"][everything["label"]]
    ranked = predictor.predict(["a dull , lifeless film"], top_k=2)[0]["probabilities"]
    assert list(ranked.values()) == sorted(ranked.values(), reverse=True)


@pytest.mark.parametrize("kwargs, message", [({"top_k": 0}, "top_k must be between 1 and 2"),
                                             ({"top_k": 3}, "top_k must be between 1 and 2"),
                                             ({"batch_size": 0}, "batch_size must be a positive")])
def test_out_of_range_options_are_refused(checkpoint, kwargs, message):
    with pytest.raises(UserInputError, match=message):
        textcnn.load(checkpoint).predict(["fine"], **kwargs)


def test_internal_batching_does_not_change_results(checkpoint, sst2_slice):
    predictor = textcnn.load(checkpoint)
    texts = sst2_texts(sst2_slice, "test", 100) + TEXTS
    one_batch = predictor.logits(texts, batch_size=1000)
    torch.testing.assert_close(predictor.logits(texts, batch_size=7), one_batch, rtol=0, atol=1e-5)
    expected = torch.cat([predictor.forward_ids(predictor.batch([text])) for text in texts[:20]])
    torch.testing.assert_close(one_batch[:20], expected, rtol=0, atol=1e-5)


def test_predictions_are_the_same_from_many_threads(checkpoint, sst2_slice):
    predictor = textcnn.load(checkpoint)
    texts = sst2_texts(sst2_slice, "test", 200)
    expected = predictor.predict_proba(texts)
    chunks = [texts[i::8] for i in range(8)]
    with ThreadPoolExecutor(max_workers=8) as pool:
        results = list(pool.map(lambda chunk: predictor.predict_proba(chunk, batch_size=16), chunks * 3))
    for i, result in enumerate(results):
        torch.testing.assert_close(result, expected[i % 8 :: 8], rtol=0, atol=1e-5)


def test_temperature_softens_probabilities_but_keeps_labels(checkpoint):
    plain, soft = textcnn.load(checkpoint), textcnn.load(checkpoint, temperature=2.0)
    logits = plain.logits(TEXTS)
    torch.testing.assert_close(soft.predict_proba(TEXTS), (logits / 2.0).softmax(-1))
    assert [r["label"] for r in soft.predict(TEXTS)] == [r["label"] for r in plain.predict(TEXTS)]
    assert soft.predict_proba(TEXTS).max(-1).values.lt(plain.predict_proba(TEXTS).max(-1).values).all()
    with pytest.raises(UserInputError, match="not a positive number"):
        textcnn.load(checkpoint, temperature=0.0)


def test_metadata_describes_labels_and_model_size(checkpoint):
    metadata = textcnn.load(checkpoint).metadata()
    assert metadata["backend"] == "pytorch" and metadata["label_names"] == ["negative", "positive"]
    assert metadata["network"]["conv_channels"] == [32, 48]
    assert metadata["size_bytes"] == 4 * metadata["num_parameters"] > 0


# -- the predict command ---------------------------------------------------------------------------------

def run_predict(capsys, *argv: str) -> list[str]:
    cli.predict(list(argv))
    return capsys.readouterr().out.splitlines()


def test_predict_command_reads_a_dataset_split_and_writes_csv(checkpoint, sst2_slice, capsys):
    lines = run_predict(capsys, "--checkpoint", str(checkpoint), "--dataset", str(sst2_slice), "--split",
                        "validation", "--limit", "25", "--format", "csv")
    rows = list(csv.reader(lines))
    assert rows[0] == ["text", "label", "negative", "positive"] and len(rows) == 26
    expected = textcnn.load(checkpoint).predict(sst2_texts(sst2_slice, "validation", 25))
    for row, result in zip(rows[1:], expected):
        assert row[1] == result["label"]
        assert float(row[3]) == pytest.approx(result["probabilities"]["positive"], abs=1e-6)


def test_predict_command_top_k_and_explanations(checkpoint, tmp_path, capsys):
    page = tmp_path / "explained.html"
    lines = run_predict(capsys, "--checkpoint", str(checkpoint), "--top-k", "1", "--explain", "--top-ngrams", "2",
                        "--html", str(page), "a gorgeous , witty film", "a dull mess")
    results = [json.loads(line) for line in lines]
    assert [r["text"] for r in results] == ["a gorgeous , witty film", "a dull mess"]
    for result in results:
        assert list(result["probabilities"]) == [result["label"]] == [result["explanation"]["label"]]
        explanation = result["explanation"]
        assert 1 <= len(explanation["ngrams"]) <= 2
        total = explanation["bias"] + explanation["rest"] + sum(g["contribution"] for g in explanation["ngrams"])
        assert total == pytest.approx(explanation["logit"], abs=1e-4)
    assert page.read_text(encoding="utf-8").count("<section>") == 2

    csv_rows = list(csv.reader(run_predict(capsys, "--checkpoint", str(checkpoint), "--format", "csv", "--top-k", "2",
                                           "--explain", "a dull mess")))
    assert csv_rows[0] == ["text", "label", "label_1", "probability_1", "label_2", "probability_2", "top_ngrams"]
    assert csv_rows[1][1] == csv_rows[1][2] and "(" in csv_rows[1][6]


@pytest.mark.parametrize("argv, message", [
    (["--top-k", "5", "fine"], "top_k must be between 1 and 2"),
    (["--dataset", "{data}", "--split", "nope"], "no split 'nope'"),
    (["--dataset", "{data}", "--text-column", "body"], "--text-column 'body' is not a column"),
    (["--dataset", "{data}", "--text-column", "label"], "not strings"),
    (["--explain", "--top-ngrams", "0", "fine"], "--top-ngrams must be a positive integer"),
])
def test_predict_command_errors_are_one_line(checkpoint, sst2_slice, capsys, argv, message):
    argv = [arg.replace("{data}", str(sst2_slice)) for arg in argv]
    with pytest.raises(SystemExit) as exit_info:
        cli.predict_main(["--checkpoint", str(checkpoint), *argv])
    stderr = capsys.readouterr().err.strip()
    assert exit_info.value.code == 2 and len(stderr.splitlines()) == 1
    assert stderr.startswith("error:") and message in stderr


# -- large inputs: chunk by chunk ----------------------------------------------------------------------

FIXTURE = Path(__file__).parent / "fixtures" / "textcnn-0.1.0" / "sst2_tiny.ckpt"


@pytest.mark.parametrize("output_format", ["jsonl", "csv"])
def test_predict_prints_chunk_after_chunk_exactly_what_one_call_gives(output_format, tmp_path, capsys, monkeypatch):
    monkeypatch.setattr(prediction_io, "CHUNK_TEXTS", 3)
    texts = [f"{word} film , {index}" for index, word in enumerate(["fine", "dull", "witty", "bad"] * 5)]
    path = tmp_path / "texts.txt"
    path.write_text("\n".join(texts) + "\n")
    assert cli.predict(["--checkpoint", str(FIXTURE), "extra text", "--file", str(path), "--format", output_format]) == 21
    expected = textcnn.load(FIXTURE).predict(["extra text", *texts])
    out = capsys.readouterr().out
    if output_format == "csv":
        rows = list(csv.DictReader(io.StringIO(out)))
        assert out.count("text,label,negative,positive") == 1  # one header for every chunk
        assert [float(row["positive"]) for row in rows] == [r["probabilities"]["positive"] for r in expected]
    else:
        rows = [json.loads(line) for line in out.splitlines()]
        assert [row["probabilities"] for row in rows] == [r["probabilities"] for r in expected]
    assert [row["text"] for row in rows] == ["extra text", *texts]


def test_the_first_predictions_come_out_while_stdin_is_still_open():
    process = subprocess.Popen([sys.executable, "-m", "textcnn", "predict", "--checkpoint", str(FIXTURE)],
                               stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    try:
        process.stdin.write(b"a fine film\n" * prediction_io.CHUNK_TEXTS)
        process.stdin.flush()
        ready, _, _ = select.select([process.stdout], [], [], 60)
        assert ready, "no prediction printed within 60 s of the first chunk"
        assert json.loads(process.stdout.readline())["text"] == "a fine film"
    finally:
        process.stdin.close()
        process.stdout.read()
        process.wait(timeout=60)
    assert process.returncode == 0


def test_a_line_without_end_is_refused_without_reading_it_all(tmp_path):
    with pytest.raises(UserInputError, match="line 1 is longer than 16 MiB; texts are read one per line"):
        cli.predict(["--checkpoint", str(FIXTURE), "--file", "/dev/zero"])


def peak_rss_mb(path: Path) -> float:
    """Peak resident memory of ``textcnn predict --file PATH`` in its own process (output discarded)."""
    script = ("import resource, sys\nfrom textcnn.cli import main\n"
              "try:\n    main(sys.argv[1:])\nfinally:\n"
              "    print(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss, file=sys.stderr)\n")
    done = subprocess.run([sys.executable, "-c", script, "predict", "--checkpoint", str(FIXTURE), "--file", str(path)],
                          stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, timeout=300, check=True)
    return int(done.stderr.decode().split()[-1]) / 1024


@pytest.mark.slow
def test_predict_memory_does_not_grow_with_the_input(tmp_path):
    line = b"a gorgeous , witty , seductive movie that is also a bit too long .\n"
    small, large = tmp_path / "small.txt", tmp_path / "large.txt"
    small.write_bytes(line * 10_000)  # 0.7 MB
    large.write_bytes(line * 150_000)  # 10 MB: holding it all (texts and results) would grow with it
    assert peak_rss_mb(large) - peak_rss_mb(small) < 30
