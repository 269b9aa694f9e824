"""The benchmarks' pieces: the baselines on a real slice, the per-run report and the table, the runs
that only measure; and the wheel, which leaves all of them out."""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
import zipfile
from pathlib import Path

import numpy as np
import pytest
from pytorch_lightning.callbacks import EarlyStopping, ModelCheckpoint

from benchmarks.baselines import fasttext_bigrams, tfidf_logreg, words
from benchmarks.protocol import (DATASETS, config_args, data_module, kfold_dirs, recipe_args, split_texts_and_labels,
                                 sst2_with_phrases)
from benchmarks.report import Part, Run, results_markdown, results_table, summarise, targets_summary, write_report
from tests.conftest import DATA_DIR, ROOT, TINY_MODEL_ARGS, write_slice
from textcnn.data import TextDataModule
from textcnn.errors import UserInputError
from textcnn.tokenizer import train_tokenizer
from textcnn.training.build import build, build_data
from textcnn.training.callbacks import BestAndLastCheckpoint


@pytest.fixture(scope="module")
def sst2_splits(sst2_slice):
    data = TextDataModule(path=str(sst2_slice))
    return {role: split_texts_and_labels(data, role) for role in ("train", "validation", "test")}


@pytest.mark.slow
@pytest.mark.parametrize("baseline", [fasttext_bigrams, tfidf_logreg])
def test_baselines_beat_chance_on_held_out_sst2_sentences(sst2_splits, baseline):
    texts, labels = sst2_splits["test"]
    options = {"buckets": 100_000} if baseline is fasttext_bigrams else {}  # a small table allocates fast
    result = baseline(sst2_splits["train"], sst2_splits["validation"], texts, seed=1, **options)
    assert result.test_predictions.shape == (600,)
    assert np.mean(result.test_predictions == np.array(labels)) > 0.65  # chance is 0.5
    assert result.validation_accuracy > 0.65 and result.setting.startswith(("lr=", "C="))


def test_baselines_see_the_words_textcnn_sees():
    text = "A gripping<br />film, isn't it?!"
    tokenizer = train_tokenizer([text])
    assert words(text) == tokenizer.encode(text).tokens == ["a", "gripping", "film", ",", "isn", "'", "t", "it", "?!"]


def test_a_run_report_holds_per_class_metrics_a_confusion_png_and_the_misclassified_texts(tmp_path):
    texts = ["good", "bad", "fine", "awful", "great"]
    report = write_report(tmp_path, texts, [1, 1, 0, 0, 1], [1, 0, 1, 0, 1], ["negative", "positive"])
    assert report["accuracy"] == pytest.approx(0.6)
    assert report["confusion_matrix"] == [[1, 1], [1, 2]]
    assert report["per_class"]["positive"]["precision"] == pytest.approx(2 / 3)
    assert json.loads((tmp_path / "report.json").read_text())["per_class"] == report["per_class"]
    assert (tmp_path / "confusion_matrix.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    wrong = [json.loads(line) for line in (tmp_path / "misclassified.jsonl").read_text().splitlines()]
    assert wrong == [{"text": "bad", "label": "negative", "predicted": "positive"},
                     {"text": "fine", "label": "positive", "predicted": "negative"}]


def test_the_table_gives_mean_and_std_over_seeds_kims_number_and_bolds_the_best():
    runs = [Run("SST-2", "textcnn", "rand", seed, accuracy, 10.0) for seed, accuracy in [(1, 0.80), (2, 0.82), (3, 0.84)]]
    runs += [Run("SST-2", "fastText bigrams", "", seed, 0.81, 4.0, setting=f"lr={lr}") for seed, lr in [(1, 0.1), (2, 0.5)]]
    rows = summarise(runs)
    assert [(row.model, len(row.accuracies)) for row in rows] == [("textcnn", 3), ("fastText bigrams", 2)]
    assert rows[0].mean == pytest.approx(0.82) and rows[0].std == pytest.approx(0.02)
    table = results_table(rows, [DATASETS["sst2"]]).splitlines()
    assert table[2] == "| SST-2 | textcnn | rand | **82.0 ± 2.0 (n=3)** | 82.7 | 10 s |"
    assert table[3] == "| SST-2 | fastText bigrams | lr=0.1, lr=0.5 | 81.0 ± 0.0 (n=2) |  | 4 s |"


def test_the_summary_states_each_target_and_the_gap_to_kim():
    runs = [Run("SST-2", "textcnn", "rand", 1, 0.80, 1.0), Run("SST-2", "textcnn", "non-static", 1, 0.84, 1.0),
            Run("SST-2", "TF-IDF 1-2-gram + LR", "", 1, 0.816, 1.0), Run("TREC (coarse)", "textcnn", "rand", 1, 0.90, 1.0),
            Run("TREC (coarse)", "fastText bigrams", "", 1, 0.92, 1.0)]
    summary = targets_summary(summarise(runs), [DATASETS["sst2"], DATASETS["trec"]]).splitlines()
    assert summary[0] == ("* **SST-2**: best textcnn (non-static) 84.0; beats both baselines (best baseline 81.6); "
                          "rand 80.0 vs Kim CNN-rand 82.7 (-2.7); best pretrained (non-static) 84.0 vs Kim's best 88.1 (-4.1)")
    assert summary[1].startswith("* **TREC (coarse)**: best textcnn (rand) 90.0; does not beat fastText bigrams (92.0)")


def test_the_summary_holds_the_default_recipe_to_its_margin_over_the_best_baseline():
    runs = [Run("SST-2", "textcnn", "default", 1, 0.83, 1.0), Run("SST-2", "fastText bigrams", "", 1, 0.82, 1.0),
            Run("MR", "textcnn", "default", 1, 0.79, 1.0), Run("MR", "TF-IDF 1-2-gram + LR", "", 1, 0.788, 1.0)]
    sst2, mr = targets_summary(summarise(runs), [DATASETS["sst2"], DATASETS["rotten_tomatoes"]]).splitlines()
    assert "default recipe 83.0, +1.0 over the best baseline (target +0.5: met)" in sst2
    assert "default recipe 79.0, +0.2 over the best baseline (target +0.5: missed)" in mr


def test_the_default_recipe_reads_the_configs_rows_and_none_of_its_settings(tmp_path):
    """What a user with the data would type: the same rows as the baselines (columns, carve), the
    model, data and trainer settings all the defaults."""
    args = recipe_args(DATASETS["trec"], DATA_DIR / "trec")
    assert f"--data.path={DATA_DIR / 'trec'}" in args and "--data.label_column=coarse_label" in args
    assert not any(arg.startswith(("--config", "--model", "--trainer", "--data.max_length")) for arg in args)
    recipe = build_data([*args, f"--trainer.default_root_dir={tmp_path}"])
    config = data_module(DATASETS["trec"], tmp_path / "run")
    assert split_texts_and_labels(recipe, "validation") == split_texts_and_labels(config, "validation")
    assert recipe.hparams.pretrained_vectors == "glove-6b-50d" and recipe.hparams.max_length == 512


def test_chinese_reviews_config_spells_out_what_the_recipe_derives_and_the_baselines_read_characters(tmp_path):
    """The recipe's run (only the data given) and the config's build the same network on the same rows;
    the baselines' n-grams are the characters textcnn's tokenizer splits, the usual practice for Chinese."""
    from textcnn.data.datamodule import TextDataModule
    from textcnn.training.recipe import with_recipe
    from textcnn.training.run_config import from_command_line, resolve

    dataset, root = DATASETS["chnsenticorp"], [f"--trainer.default_root_dir={tmp_path}"]
    recipe = resolve(with_recipe(*from_command_line([*recipe_args(dataset, DATA_DIR / "chnsenticorp"), *root])))
    config = build([*config_args(dataset, DATA_DIR / "chnsenticorp"), *root], instantiate=False).config.as_dict()
    assert recipe["model"]["network"] == config["model"]["network"] and recipe["model"]["network"]["embed_dim"] == 128
    assert recipe["data"]["pretrained_vectors"] is None and config["data"]["pretrained_vectors"] is None
    assert (split_texts_and_labels(TextDataModule(**recipe["data"]), "test")
            == split_texts_and_labels(data_module(dataset, tmp_path / "run"), "test"))
    assert words("酒店很好，WiFi 不错") == ["酒", "店", "很", "好", ",", "wifi", "不", "错"]  # NFKC: the full-width comma too


def test_parts_run_separately_merge_into_one_table(tmp_path):
    trec = Part("bench --datasets trec", 60.0, "2 cores", [DATASETS["trec"]],
                [Run("TREC (coarse)", "textcnn", "rand", 1, 0.9, 20.0)], {"TREC (coarse)": "97% of words"})
    sst2 = Part("bench --datasets sst2", 120.0, "2 cores", [DATASETS["sst2"]],
                [Run("SST-2", "textcnn", "rand", 1, 0.8, 30.0), Run("SST-2", "textcnn", "rand", 2, 0.82, 34.0)],
                notes=["one core each"])
    trec.save(tmp_path / "trec.json"), sst2.save(tmp_path / "sst2.json")
    markdown = results_markdown([Part.load(tmp_path / "trec.json"), Part.load(tmp_path / "sst2.json")])
    assert "| TREC (coarse) | textcnn | rand | **90.0 ± 0.0 (n=1)** | 91.2 | 20 s |" in markdown
    assert "| SST-2 | textcnn | rand | **81.0 ± 1.4 (n=2)** | 82.7 | 32 s |" in markdown
    assert "`bench --datasets trec` — 1.0 min" in markdown and "summed wall time 3 min" in markdown
    assert "* TREC (coarse): 97% of words" in markdown and "one core each" in markdown


def test_merged_parts_count_a_baseline_trained_again_on_the_same_fold_once(tmp_path):
    """Two parts over the same folds (other variants) each train the baselines: kept once per fold and
    seed; TF-IDF + LR, deterministic, once per fold whatever the seed; textcnn variants all kept."""
    def part(variant: str, seed: int) -> Part:
        runs = []
        for fold in (0, 1):
            runs.append(Run("Subj (10-fold CV)", "textcnn", variant, seed, 0.9, 1.0, f"r/subj/fold{fold}-{variant}-seed{seed}"))
            runs += [Run("Subj (10-fold CV)", model, "", seed, accuracy + fold / 100, 1.0,
                         f"r/subj/fold{fold}-baselines-seed{seed}/{name}")
                     for model, name, accuracy in [("fastText bigrams", "fasttext_bigrams", 0.90),
                                                   ("TF-IDF 1-2-gram + LR", "tfidf_logreg", 0.91)]]
        return Part("bench", 1.0, "2 cores", [DATASETS["subj"]], runs)

    markdown = results_markdown([part("rand", 1), part("static", 1), part("rand", 2)])
    assert "| fastText bigrams | lr=" not in markdown
    assert "| Subj (10-fold CV) | fastText bigrams |  | 90.5 ± 0.6 (n=4) |" in markdown  # 2 folds × seeds 1, 2
    assert "| Subj (10-fold CV) | TF-IDF 1-2-gram + LR |  | **91.5 ± 0.7 (n=2)** |" in markdown
    assert "| Subj (10-fold CV) | textcnn | rand | 90.0 ± 0.0 (n=4) |" in markdown


def test_merging_something_that_is_not_a_benchmark_run_says_so(tmp_path):
    with pytest.raises(UserInputError, match="benchmark part"):
        Part.load(tmp_path / "missing.json")


def test_kfold_directories_partition_all_rows_into_stratified_test_folds(sst2_slice, tmp_path):
    data = TextDataModule(path=str(sst2_slice))
    total = sum(len(split) for split in data.splits.values())  # 2000 + 300 + 600
    dirs = kfold_dirs(data, 5, tmp_path)
    tests = [split_texts_and_labels(TextDataModule(path=str(d)), "test") for d in dirs]
    assert sorted(text for texts, _ in tests for text in texts) == sorted(
        text for role in ("train", "validation", "test") for text in split_texts_and_labels(data, role)[0])
    assert all(abs(len(texts) - total / 5) <= 1 for texts, _ in tests)  # 580 ± 1 (per-class rounding)
    positive = np.mean([label for role in data.splits for label in split_texts_and_labels(data, role)[1]])
    assert all(abs(np.mean(labels) - positive) < 0.01 for _, labels in tests)  # stratified
    fold = TextDataModule(path=str(dirs[0]))
    assert fold.label_names == ["negative", "positive"]
    assert len(fold.splits["train"]) + len(fold.splits["validation"]) == total - len(tests[0][0])  # validation carved
    assert not set(split_texts_and_labels(fold, "train")[0]) & set(tests[0][0])
    assert kfold_dirs(data, 5, tmp_path / "again")[3].joinpath("test.parquet").read_bytes() == \
        dirs[3].joinpath("test.parquet").read_bytes()  # seeded


def test_sst2_with_phrases_trains_on_glue_phrases_and_tests_on_sst2_sentences(tmp_path):
    data = TextDataModule(path=str(sst2_with_phrases(tmp_path)))
    assert {role: len(split) for role, split in data.splits.items()} == {"train": 67349, "validation": 872, "test": 1821}
    assert data.label_names == ["negative", "positive"]
    assert split_texts_and_labels(data, "test") == split_texts_and_labels(TextDataModule(path=str(DATA_DIR / "sst2")), "test")


@pytest.mark.slow
def test_the_baselines_handle_many_classes(tmp_path):
    data = TextDataModule(path=str(write_slice("trec", tmp_path, {"train": 1500, "test": 300})), label_column="coarse_label")
    splits = {role: split_texts_and_labels(data, role) for role in ("train", "validation", "test")}
    for result in (tfidf_logreg(splits["train"], splits["validation"], splits["test"][0]),
                   fasttext_bigrams(splits["train"], splits["validation"], splits["test"][0], buckets=100_000)):
        assert np.mean(result.test_predictions == np.array(splits["test"][1])) > 0.6  # 6 classes, majority ~0.2


@pytest.mark.slow
def test_the_script_refuses_fewer_than_two_folds_in_one_line(tmp_path):
    result = subprocess.run(
        [sys.executable, str(ROOT / "scripts" / "benchmark_accuracy.py"), "--datasets", "subj", "--variants", "rand",
         "--folds", "1", "--run-dir", str(tmp_path), "--output", str(tmp_path / "results.md")],
        capture_output=True, text=True, timeout=120,
    )
    assert result.returncode == 1
    assert result.stderr.strip().splitlines()[-1] == "error: --folds must be at least 2 (Kim: 10), got 1"
    assert not (tmp_path / "results.md").exists()


def test_a_datasets_splits_come_from_its_config_through_build_whatever_the_working_directory(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)  # configs name ../shared/data/... as seen from the repository root
    data = data_module(DATASETS["trec"], tmp_path / "run")
    assert Path(data.path).resolve() == (ROOT.parent / "shared" / "data" / "trec").resolve()
    assert data.label_column == "coarse_label"  # as configs/trec.yaml sets it
    assert data.hparams.min_length == 5  # linked from the widest of Kim's kernels, [3, 4, 5]
    assert data.label_names[:2] == ["ABBR", "ENTY"] and len(split_texts_and_labels(data, "test")[0]) == 500


@pytest.mark.slow
def test_a_measurement_run_trains_without_validation_and_keeps_no_checkpoint(sst2_slice, tmp_path):
    """What the speed and streaming benchmarks build from a config: ``build(..., model_selection=False)``."""
    args = ["--config", str(ROOT / "configs" / "sst2.yaml"), f"--data.path={sst2_slice}", *TINY_MODEL_ARGS,
            f"--trainer.default_root_dir={tmp_path}", "--trainer.max_steps=3", "--trainer.limit_val_batches=0",
            "--trainer.logger=false"]
    assert {EarlyStopping, BestAndLastCheckpoint} <= {type(callback) for callback in build(args).trainer.callbacks}
    cli = build(args, model_selection=False)
    assert not [callback for callback in cli.trainer.callbacks if isinstance(callback, (ModelCheckpoint, EarlyStopping))]
    cli.trainer.fit(cli.model, datamodule=cli.datamodule)
    assert cli.trainer.global_step == 3
    assert not list(tmp_path.rglob("*.ckpt"))


@pytest.mark.slow
def test_the_wheel_ships_the_package_and_none_of_the_measurement_code(tmp_path):
    """Built by the project's build backend (pyproject.toml: setuptools.build_meta, offline, as ``pip
    wheel --no-build-isolation`` would) from a fresh copy of the sources, so that no stale build/
    folder adds or hides a file."""
    source = tmp_path / "source"
    source.mkdir()
    for name in ("pyproject.toml", "README.md"):
        shutil.copy(ROOT / name, source / name)
    for name in ("textcnn", "benchmarks", "scripts"):
        shutil.copytree(ROOT / name, source / name, ignore=shutil.ignore_patterns("__pycache__"))
    build_wheel = "import sys; from setuptools import build_meta; build_meta.build_wheel(sys.argv[1])"
    result = subprocess.run([sys.executable, "-c", build_wheel, str(tmp_path / "dist")], cwd=source,
                            capture_output=True, text=True, timeout=300)
    assert result.returncode == 0, result.stderr[-3000:]
    [wheel] = (tmp_path / "dist").glob("*.whl")
    names = zipfile.ZipFile(wheel).namelist()
    assert {name.split("/")[0] for name in names if ".dist-info/" not in name} == {"textcnn"}  # no benchmarks/, scripts/
    assert not {"textcnn/benchmark.py", "textcnn/baselines.py", "textcnn/flops.py"} & set(names)
    for package in ("data", "training", "inference"):
        assert f"textcnn/{package}/__init__.py" in names


def test_the_whole_command_benchmark_times_both_commands_and_textcnns_phases(sst2_slice, tmp_path):
    from benchmarks.whole_command import PHASES, run_textcnn, run_tutorial

    tutorial = run_tutorial(str(sst2_slice), epochs=1, seed=1)
    textcnn = run_textcnn(str(ROOT / "configs" / "sst2.yaml"), 1, 1, tmp_path,
                          [*TINY_MODEL_ARGS, f"--data.path={sst2_slice}"])
    assert 0.0 <= tutorial["test_accuracy"] <= 1.0 and 0.0 <= textcnn["test_accuracy"] <= 1.0
    assert textcnn["epochs"] == 1 and list(textcnn["phases"]) == [label for label, _, _ in PHASES]
    assert all(seconds >= 0 for seconds in textcnn["phases"].values())
    assert sum(textcnn["phases"].values()) == pytest.approx(textcnn["total_s"])


def test_the_speed_benchmark_counts_the_positions_a_packed_batch_computes(sst2_slice):
    from benchmarks.speed import measure_training

    args = [*TINY_MODEL_ARGS, f"--data.path={sst2_slice}"]
    packed = measure_training(str(ROOT / "configs" / "sst2.yaml"), args, batches=4, precision="32-true")
    padded = measure_training(str(ROOT / "configs" / "sst2.yaml"), [*args, "--model.pack_batches=false"], batches=4,
                              precision="32-true")
    assert packed["tokens_per_s"] > 0 and packed["steps"] == padded["steps"] == 4
    assert padded["real_token_share"] < 0.75 < packed["real_token_share"] <= 1.0


def test_the_speed_benchmark_times_the_region_recipe_it_trains_on_documents(sst2_slice):
    from benchmarks.speed import measure_training

    args = [f"--data.path={sst2_slice}", "--model.network.conv_channels=[8]", "--data.batch_size=16"]
    run = measure_training(str(ROOT / "configs" / "imdb_region.yaml"), args, batches=3, precision="32-true")
    assert run["steps"] == 3 and run["examples"] == 48 and run["epoch_seconds"] > 0
    assert run["flops_per_example"] > 0  # the classifier's; the region windows are sums
    assert 0.75 < run["real_token_share"] <= 1.0  # random batches, packed


def test_imbalance_scores_are_macro_f1_accuracy_and_the_rare_class_f1():
    from benchmarks.imbalance import scores

    result = scores([0, 0, 1, 1], [0, 1, 1, 1])  # negative F1 2/3, positive F1 4/5
    assert result == pytest.approx({"macro_f1": (2 / 3 + 4 / 5) / 2, "accuracy": 0.75, "positive_f1": 0.8})


def test_a_class_balanced_logistic_regression_chosen_on_macro_f1_finds_more_of_the_rare_class(tmp_path):
    import datasets

    from benchmarks.imbalance import imbalanced_sst2, macro_f1, scores

    splits = datasets.load_dataset(str(imbalanced_sst2(tmp_path)))
    train, validation = ((splits[s]["text"], splits[s]["label"]) for s in ("train", "validation"))
    texts, labels = splits["test"]["text"], splits["test"]["label"]
    plain = tfidf_logreg(train, validation, texts)
    balanced = tfidf_logreg(train, validation, texts, class_weight="balanced", score=macro_f1)
    assert balanced.name.endswith("class_weight=balanced") and plain.name == "TF-IDF 1-2-gram + LR"
    assert scores(balanced.test_predictions, labels)["positive_f1"] > scores(plain.test_predictions, labels)["positive_f1"] + 0.1


def test_the_ensemble_benchmark_scores_every_seeds_checkpoint_together_beside_the_runs_and_baselines(
        checkpoint, tmp_path):
    from benchmarks.ensemble import ensemble_rows, markdown
    from tests.test_ensemble import another_model
    from textcnn.training.evaluation import evaluate_checkpoint

    runs, checkpoints = [], []
    for seed in (1, 2):
        run_dir = tmp_path / f"default-seed{seed}"
        (run_dir / "lightning_logs" / "version_0" / "checkpoints").mkdir(parents=True)
        target = run_dir / "lightning_logs" / "version_0" / "checkpoints" / "best-3-0.7.ckpt"
        checkpoints.append(shutil.copy(checkpoint, target) if seed == 1 else another_model(checkpoint, target))
        runs.append(Run("SST-2", "textcnn", "default", seed, 0.7 + seed / 100, 10.0 * seed, str(run_dir)))
    runs += [Run("SST-2", "fastText bigrams", "", 1, 0.69, 1.0), Run("SST-2", "fastText bigrams", "", 2, 0.71, 1.0),
             Run("SST-2", "TF-IDF 1-2-gram + LR", "", 1, 0.65, 1.0),
             Run("SST-2", "textcnn", "rand", 1, 0.6, 5.0, str(tmp_path / "rand-seed1"))]  # one seed: no ensemble
    [row] = ensemble_rows([Part("command", 1.0, "machine", [DATASETS["sst2"]], runs)])
    assert row["single"] == [0.71, 0.72] and row["train_seconds"] == [10.0, 20.0]
    assert row["all"] == pytest.approx(evaluate_checkpoint(checkpoints, split="test")["accuracy"])
    assert row["pairs"] == [row["all"]] and row["baseline"] == (pytest.approx(0.70), "fastText bigrams")
    table = markdown([row], "scripts/benchmark_ensemble.py RUN", [])
    assert f"**{100 * row['all']:.1f}** (n=2)" in table and "| 15 s, 30 s |" in table
