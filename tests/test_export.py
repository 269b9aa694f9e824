"""ONNX export: same logits as PyTorch on real texts, dynamic axes, a predictor without Lightning."""

import json
import os
import subprocess
import sys

import datasets
import onnx
import pytest

import textcnn
from textcnn import cli
from textcnn.errors import UserInputError
from textcnn.inference.export import MAX_ABS_DIFF, export_onnx
from textcnn.inference.onnx import OnnxPredictor
from tests.conftest import ROOT

# results that depend on the CPU's kernels: CI runs these a second time with ATEN_CPU_CAPABILITY=default
pytestmark = pytest.mark.numerics


@pytest.fixture(scope="module")
def exported(checkpoint, tmp_path_factory):
    directory = tmp_path_factory.mktemp("export") / "sst2-onnx"
    return export_onnx(checkpoint, directory, temperature=1.5)


@pytest.fixture(scope="module")
def real_texts(sst2_slice) -> list[str]:
    test = datasets.load_dataset(str(sst2_slice))["test"]["text"]
    short = ["", "!", "ok", "so bad"]  # no more tokens than the widest kernel (3)
    long = [" ".join(test[i : i + 6]) for i in range(0, 30, 6)]  # past max_length: truncated
    return test[:200] + short + long


def test_onnx_logits_match_pytorch_on_real_texts(exported, checkpoint, real_texts):
    torch_predictor, onnx_predictor = textcnn.load(checkpoint), textcnn.load(exported["output"])
    assert isinstance(onnx_predictor, OnnxPredictor)
    encoded = torch_predictor.batch(real_texts)
    real_lengths = encoded.ne(0).sum(1)
    assert real_lengths.min() <= 2 and real_lengths.max() == torch_predictor.max_length  # both edge cases present
    for batch_size in (1, 7, 256):  # alone, small padded batches, one big batch
        difference = (onnx_predictor.logits(real_texts, batch_size) - torch_predictor.logits(real_texts, batch_size)).abs()
        assert float(difference.max()) <= MAX_ABS_DIFF
    padded = onnx_predictor.forward_ids(encoded)  # one batch padded to the longest: the mask is in the graph
    assert float((padded - torch_predictor.forward_ids(encoded)).abs().max()) <= MAX_ABS_DIFF
    assert exported["max_abs_diff_vs_pytorch"] <= MAX_ABS_DIFF


def test_export_has_dynamic_axes_tokenizer_and_labels(exported, checkpoint):
    model = onnx.load(os.path.join(exported["output"], "model.onnx"))
    onnx.checker.check_model(model)
    (graph_input,) = model.graph.input
    assert [d.dim_param for d in graph_input.type.tensor_type.shape.dim] == ["batch", "sequence"]
    assert model.graph.output[0].type.tensor_type.shape.dim[0].dim_param == "batch"
    metadata = json.loads(open(os.path.join(exported["output"], "metadata.json"), encoding="utf-8").read())
    torch_predictor = textcnn.load(checkpoint)
    assert metadata["label_names"] == ["negative", "positive"] and metadata["temperature"] == 1.5
    assert metadata["max_length"] == torch_predictor.max_length and metadata["min_length"] == 3
    onnx_predictor = textcnn.load(exported["output"])
    assert onnx_predictor.tokenizer.to_str() == torch_predictor.tokenizer.to_str()
    assert onnx_predictor.temperature == 1.5 and textcnn.load(exported["output"], temperature=1.0).temperature == 1.0
    described = onnx_predictor.metadata()
    assert described["backend"] == "onnx" and described["num_parameters"] == torch_predictor.metadata()["num_parameters"]


def test_onnx_predictor_runs_without_lightning(exported, checkpoint):
    script = (
        "import json, sys\n"
        "sys.modules['pytorch_lightning'] = sys.modules['lightning'] = None  # importing them now fails\n"
        "import textcnn\n"
        f"predictor = textcnn.load({exported['output']!r}, temperature=1.0)\n"
        "print(json.dumps(predictor.predict(['a gorgeous , witty film', 'a dull mess'], top_k=2)))\n"
    )
    result = subprocess.run([sys.executable, "-c", script], cwd=ROOT, capture_output=True, timeout=120)
    assert result.returncode == 0, result.stderr.decode()[-2000:]
    got = json.loads(result.stdout)
    want = textcnn.load(checkpoint).predict(["a gorgeous , witty film", "a dull mess"], top_k=2)
    assert [r["label"] for r in got] == [r["label"] for r in want]
    for g, w in zip(got, want):
        assert list(g["probabilities"]) == list(w["probabilities"])
        assert list(g["probabilities"].values()) == pytest.approx(list(w["probabilities"].values()), abs=1e-5)


@pytest.mark.slow  # trains
def test_a_region_embedding_model_exports_with_the_same_logits(sst2_slice, real_texts, tmp_path):
    """The region architecture trains with embedding bags and exports its shifted-sum path."""
    from textcnn.cli import train

    report = train(
        ["--config", str(ROOT / "configs" / "imdb_region.yaml"), f"--data.path={sst2_slice}", "--data.max_length=64",
         "--model.network.conv_channels=[16]", "--model.network.kernel_sizes=[[2, 3]]",
         "--model.network.ngram_buckets=1024", "--trainer.max_epochs=1", "--trainer.enable_progress_bar=false",
         "--trainer.enable_model_summary=false", f"--trainer.default_root_dir={tmp_path}"]
    )
    exported = export_onnx(report["checkpoint"], tmp_path / "onnx")
    torch_predictor, onnx_predictor = textcnn.load(report["checkpoint"]), textcnn.load(exported["output"])
    for batch_size in (1, 64):
        difference = (onnx_predictor.logits(real_texts, batch_size) - torch_predictor.logits(real_texts, batch_size)).abs()
        assert float(difference.max()) <= MAX_ABS_DIFF


def test_export_command_writes_beside_the_checkpoint_by_default(checkpoint, tmp_path):
    copy = tmp_path / "model.ckpt"
    copy.write_bytes(checkpoint.read_bytes())
    report = cli.export(["--checkpoint", str(copy), "--format", "onnx"])
    assert report["output"] == str(tmp_path / "model-onnx")
    assert sorted(os.listdir(report["output"])) == ["metadata.json", "model.onnx", "tokenizer.json"]
    assert report["max_abs_diff_vs_pytorch"] <= MAX_ABS_DIFF


def test_unusable_export_directories_are_refused(exported, tmp_path):
    with pytest.raises(UserInputError, match="has no model.onnx"):
        textcnn.load(tmp_path)
    broken = tmp_path / "broken"
    broken.mkdir()
    for name in ("tokenizer.json", "metadata.json"):
        (broken / name).write_bytes(open(os.path.join(exported["output"], name), "rb").read())
    (broken / "model.onnx").write_bytes(b"not a model")
    with pytest.raises(UserInputError, match="not a loadable ONNX model"):
        textcnn.load(broken)
    (broken / "metadata.json").write_text('{"format": 99}', encoding="utf-8")
    with pytest.raises(UserInputError, match="export format 99"):
        textcnn.load(broken)
    with pytest.raises(UserInputError, match="--explain needs one PyTorch checkpoint"):
        cli.predict(["--checkpoint", exported["output"], "--explain", "fine"])


# -- int8 ------------------------------------------------------------------------------------------------

FIXTURES = ROOT / "tests" / "fixtures" / "textcnn-0.1.0"


@pytest.mark.parametrize("name", ["sst2_tiny", "trec_multilabel_tiny"])
def test_an_int8_export_is_quantized_checked_and_recorded(name, tmp_path):
    from textcnn.inference.export import INT8_RELATIVE_TOLERANCE

    report = cli.export(["--checkpoint", str(FIXTURES / f"{name}.ckpt"), "--output", str(tmp_path / "int8"),
                         "--quantize", "int8"])
    assert report["quantization"] == "int8" and report["label_agreement_on_probes"] >= 0.5
    assert 0 < report["max_abs_diff_vs_pytorch"] <= report["tolerance"]  # quantized: not bit-equal, within tolerance
    assert report["tolerance"] >= INT8_RELATIVE_TOLERANCE
    assert sorted(os.listdir(tmp_path / "int8")) == ["metadata.json", "model.onnx", "tokenizer.json"]  # no float copy
    graph = onnx.load(str(tmp_path / "int8" / "model.onnx"))
    operators = {node.op_type for node in graph.graph.node}
    assert "DequantizeLinear" in operators
    assert not {"ConvInteger", "MatMulInteger", "DynamicQuantizeLinear"} & operators  # no input quantized per call
    eight_bit = {t.name for t in graph.graph.initializer if t.data_type in (onnx.TensorProto.INT8, onnx.TensorProto.UINT8)}
    assert "embedding.weight_quantized" in eight_bit  # the fixtures have no n-gram bag
    metadata = json.loads((tmp_path / "int8" / "metadata.json").read_text())
    assert metadata["quantization"] == "int8" and metadata["quantized_operators"] == ["Gather"]
    predictor = textcnn.load(tmp_path / "int8")
    assert predictor.metadata()["quantization"] == "int8"
    assert textcnn.load(FIXTURES / f"{name}-onnx").metadata()["quantization"] is None


def test_int8_keeps_the_labels_of_real_texts_alone_or_batched(tmp_path, sst2_dir):
    texts = datasets.load_dataset(str(sst2_dir), split="test")["text"][:500]
    export_onnx(FIXTURES / "sst2_tiny.ckpt", tmp_path / "int8", quantize="int8")
    int8, pytorch = textcnn.load(tmp_path / "int8"), textcnn.load(FIXTURES / "sst2_tiny.ckpt")
    batched, reference = int8.logits(texts, batch_size=256), pytorch.logits(texts)
    assert float((batched.argmax(-1) == reference.argmax(-1)).float().mean()) >= 0.95
    assert float((batched - reference).abs().max()) < 0.1 * float(reference.abs().max())
    # as for float32, a text's logits do not depend on the texts batched with it
    assert float((int8.logits(texts[:100], batch_size=1) - batched[:100]).abs().max()) <= 1e-5


def test_int8_export_default_output_and_misuse(tmp_path):
    copy = tmp_path / "model.ckpt"
    copy.write_bytes((FIXTURES / "sst2_tiny.ckpt").read_bytes())
    assert cli.export(["--checkpoint", str(copy), "--quantize", "int8"])["output"] == str(tmp_path / "model-int8-onnx")
    with pytest.raises(UserInputError, match="--quantize applies to --format onnx"):
        cli.export(["--checkpoint", str(copy), "--format", "hf", "--quantize", "int8"])
    with pytest.raises(UserInputError, match="--quantize 'int4' is not one of int8"):
        export_onnx(copy, tmp_path / "x", quantize="int4")
