"""The CUDA path (``pytest -m gpu``, run by ``benchmarks/gpu.sh``): the same predictions as the CPU's,
bf16-mixed training, and ONNX Runtime's CUDA provider. Without a CUDA GPU each test skips with one line."""

from __future__ import annotations

import pytest
import torch

from tests.conftest import ROOT, TINY_MODEL_ARGS

pytestmark = [pytest.mark.gpu, pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA GPU")]

def labels(predictions: list[dict]) -> list[str]:
    return [prediction["label"] for prediction in predictions]


SENTENCES = ["a gorgeous , witty , seductive movie .", "the plot is nothing but boilerplate clichés .",
             "it 's not a bad film , just a forgettable one", "an utterly charming and hilarious film"]


def test_cuda_predictions_equal_the_cpus(checkpoint):
    import textcnn

    on_cpu = textcnn.load(checkpoint, device="cpu")
    on_cuda = textcnn.load(checkpoint, device="cuda")
    torch.testing.assert_close(on_cuda.predict_proba(SENTENCES).cpu(), on_cpu.predict_proba(SENTENCES), atol=1e-4, rtol=0)
    assert labels(on_cuda.predict(SENTENCES)) == labels(on_cpu.predict(SENTENCES))


@pytest.mark.slow
def test_bf16_mixed_training_on_cuda_learns(sst2_slice, tmp_path):
    from textcnn.cli import train

    report = train(["--config", str(ROOT / "configs" / "sst2.yaml"), *TINY_MODEL_ARGS, f"--data.path={sst2_slice}",
                    "--trainer.max_epochs=4", "--trainer.accelerator=cuda", "--trainer.devices=1",
                    "--trainer.precision=bf16-mixed", f"--trainer.default_root_dir={tmp_path}"])
    assert report["accuracy"] > 0.6  # two balanced classes: well above chance


def test_onnx_runtime_cuda_provider_matches_pytorch(checkpoint, tmp_path):
    onnxruntime = pytest.importorskip("onnxruntime", reason="onnxruntime is not installed")
    if "CUDAExecutionProvider" not in onnxruntime.get_available_providers():
        pytest.skip("this onnxruntime has no CUDAExecutionProvider (onnxruntime-gpu is not installed)")
    import textcnn
    from textcnn.inference.export import export_onnx

    export_onnx(checkpoint, tmp_path / "export")
    exported = textcnn.load(tmp_path / "export", device="cuda")
    torch.testing.assert_close(torch.as_tensor(exported.predict_proba(SENTENCES)).cpu(),
                               textcnn.load(checkpoint).predict_proba(SENTENCES), atol=1e-4, rtol=0)
