"""Devices: auto picks cuda, then mps, then cpu; a device that is not there is one line (exit 2), never
a silent fall back; ONNX Runtime gets the CUDA provider only where it exists."""

from __future__ import annotations

from pathlib import Path

import pytest
import torch

import textcnn
from textcnn import cli
from textcnn.errors import UserInputError
from textcnn.inference.devices import available_devices, resolve_device
from textcnn.inference.onnx import CPU_PROVIDER, CUDA_PROVIDER, execution_providers

FIXTURES = Path(__file__).parent / "fixtures" / "textcnn-0.1.0"
CHECKPOINT, EXPORT = FIXTURES / "sst2_tiny.ckpt", FIXTURES / "sst2_tiny-onnx"


@pytest.fixture
def cpu_only(monkeypatch):
    """This machine as one without a GPU, whatever it has."""
    monkeypatch.setattr(torch.cuda, "is_available", lambda: False)
    monkeypatch.setattr(torch.cuda, "device_count", lambda: 0)
    monkeypatch.setattr(torch.backends.mps, "is_available", lambda: False)


def test_auto_picks_the_cpu_when_there_is_nothing_else(cpu_only):
    assert resolve_device("auto") == torch.device("cpu") and available_devices() == ["cpu"]
    for path in (CHECKPOINT, EXPORT):
        predictor = textcnn.load(path, device="auto")
        assert predictor.metadata()["device"] == "cpu"
        assert predictor.predict(["a fine film"]) == textcnn.load(path).predict(["a fine film"])


def test_auto_prefers_cuda_then_mps(monkeypatch):
    monkeypatch.setattr(torch.cuda, "is_available", lambda: True)
    assert resolve_device("auto") == torch.device("cuda")
    monkeypatch.setattr(torch.cuda, "is_available", lambda: False)
    monkeypatch.setattr(torch.backends.mps, "is_available", lambda: True)
    assert resolve_device("auto") == torch.device("mps")


@pytest.mark.parametrize("device", ["cuda", "cuda:1", "mps"])
def test_a_device_that_is_not_there_is_refused_naming_what_is(device, cpu_only):
    with pytest.raises(UserInputError, match=rf"device '{device}' is not available here; available: cpu") as error:
        textcnn.load(CHECKPOINT, device=device)
    assert "\n" not in str(error.value)


def test_an_unknown_device_is_refused():
    with pytest.raises(UserInputError, match="device 'tpu' is not one of auto, cpu, cuda, mps"):
        resolve_device("tpu")


def test_onnx_runtime_uses_the_cuda_provider_only_where_it_exists():
    with_cuda = [CUDA_PROVIDER, CPU_PROVIDER]
    assert execution_providers("auto", [CPU_PROVIDER]) == [CPU_PROVIDER]
    assert execution_providers("cpu", with_cuda) == [CPU_PROVIDER]
    assert execution_providers("auto", with_cuda) == [(CUDA_PROVIDER, {"device_id": 0}), CPU_PROVIDER]
    assert execution_providers("cuda:1", with_cuda) == [(CUDA_PROVIDER, {"device_id": 1}), CPU_PROVIDER]
    with pytest.raises(UserInputError, match="has no CUDAExecutionProvider"):
        execution_providers("cuda", [CPU_PROVIDER])
    with pytest.raises(UserInputError, match="not one an ONNX export runs on"):
        execution_providers("mps", with_cuda)


@pytest.mark.parametrize("command", ["predict", "evaluate", "serve"])
@pytest.mark.parametrize("device", ["cuda", "mps"])
def test_every_command_refuses_a_missing_device_with_exit_status_2(command, device, cpu_only, capsys):
    extra = {"predict": ["fine"], "evaluate": [], "serve": ["--port", "0"]}[command]
    with pytest.raises(SystemExit) as exit_:
        cli.main([command, "--checkpoint", str(CHECKPOINT), "--device", device, *extra])
    assert exit_.value.code == 2
    last = capsys.readouterr().err.strip().splitlines()[-1]
    assert last == (f"error: device '{device}' is not available here; available: cpu (or auto, which picks "
                    "the first); pass one of those")


def test_onnx_on_a_missing_cuda_provider_is_exit_status_2(monkeypatch, capsys):
    import onnxruntime

    monkeypatch.setattr(onnxruntime, "get_available_providers", lambda: [CPU_PROVIDER])
    with pytest.raises(SystemExit) as exit_:
        cli.main(["predict", "--checkpoint", str(EXPORT), "--device", "cuda", "fine"])
    assert exit_.value.code == 2
    assert "has no CUDAExecutionProvider" in capsys.readouterr().err
