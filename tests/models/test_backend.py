"""Backend choice at start-up: cpu without a GPU, the GPU runtimes in order where one is visible, the
forced settings, the engine cache key; and, on a GPU machine only, a real CUDA session."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from models.runtime.backend import (
    Backend,
    BackendUnavailableError,
    choose_backend,
    engine_cache_key,
    gpu_visible,
    session_providers,
)

TRT, CUDA, CPU = "TensorrtExecutionProvider", "CUDAExecutionProvider", "CPUExecutionProvider"


def test_without_a_gpu_auto_is_cpu_and_cuda_is_refused() -> None:
    choice = choose_backend("auto", gpu=False, providers=[CPU], tensorrt=False)
    assert (choice.backend, choice.runtime) == (Backend.CPU, "onnxruntime-cpu") and "no GPU" in choice.reason
    with pytest.raises(BackendUnavailableError, match="no NVIDIA GPU"):
        choose_backend("cuda", gpu=False, providers=[CPU], tensorrt=False)


def test_with_a_gpu_tensorrt_then_ort_cuda_then_cpu_with_the_reason() -> None:
    assert choose_backend("auto", gpu=True, providers=[TRT, CUDA, CPU], tensorrt=True).runtime == "tensorrt"
    assert choose_backend("auto", gpu=True, providers=[TRT, CUDA, CPU], tensorrt=False).runtime == "onnxruntime-cuda"
    assert choose_backend("auto", gpu=True, providers=[CUDA, CPU], tensorrt=True).runtime == "onnxruntime-cuda"
    fallback = choose_backend("auto", gpu=True, providers=[CPU], tensorrt=False)
    assert fallback.backend is Backend.CPU and "no GPU runtime" in fallback.reason
    with pytest.raises(BackendUnavailableError, match="onnxruntime-gpu"):
        choose_backend("cuda", gpu=True, providers=[CPU], tensorrt=False)
    assert choose_backend("cpu", gpu=True, providers=[TRT, CUDA, CPU], tensorrt=True).backend is Backend.CPU


def test_gpu_visibility_reads_device_nodes_and_cuda_visible_devices() -> None:
    assert gpu_visible({}, ["/dev/nvidia0"]) and not gpu_visible({}, [])
    assert not gpu_visible({"CUDA_VISIBLE_DEVICES": ""}, ["/dev/nvidia0"])
    assert not gpu_visible({"CUDA_VISIBLE_DEVICES": "-1"}, ["/dev/nvidia0"])
    assert gpu_visible({"CUDA_VISIBLE_DEVICES": "0"}, ["/dev/nvidia0"])


def test_the_engine_cache_key_changes_with_model_gpu_and_tensorrt_version() -> None:
    base = engine_cache_key("a" * 64, "NVIDIA H200", "10.9.0")
    assert base == engine_cache_key("a" * 64, "NVIDIA H200", "10.9.0") and base.startswith("a" * 12)
    others = {
        engine_cache_key("b" * 64, "NVIDIA H200", "10.9.0"),
        engine_cache_key("a" * 64, "NVIDIA H100 80GB HBM3", "10.9.0"),
        engine_cache_key("a" * 64, "NVIDIA H200", "10.10.0"),
    }
    assert base not in others and len(others) == 3


def test_session_providers_keep_cpu_as_the_fallback(tmp_path: Path) -> None:
    trt = choose_backend("auto", gpu=True, providers=[TRT, CUDA, CPU], tensorrt=True)
    providers = session_providers(trt, tmp_path, "key")
    name, options = providers[0]
    assert name == TRT and options["trt_fp16_enable"] and options["trt_engine_cache_path"] == str(tmp_path / "key")
    assert providers[1:] == [CUDA, CPU] and (tmp_path / "key").is_dir()
    assert session_providers(choose_backend("cpu")) == [CPU]


def test_this_machine_gets_a_working_session() -> None:
    """Whatever this machine is, the chosen backend runs the real detector."""
    from models.registry import get_model
    from models.runtime.session import make_session

    choice = choose_backend("auto")
    session = make_session(str(get_model("centernet").path), 1, providers=session_providers(choice))
    if choice.backend is Backend.CUDA:
        assert session.get_providers()[0] in (TRT, CUDA)
    else:
        assert session.get_providers() == [CPU]
    inputs = session.get_inputs()[0]
    shape = [dim if isinstance(dim, int) else 1 for dim in inputs.shape]
    assert session.run(None, {inputs.name: np.zeros(shape, dtype=np.float32)})


@pytest.mark.skipif(not gpu_visible(), reason="no NVIDIA GPU visible on this machine")
def test_a_visible_gpu_is_used_or_its_missing_runtime_said() -> None:
    import onnxruntime as ort

    choice = choose_backend("auto")
    if CUDA in ort.get_available_providers():
        assert choice.backend is Backend.CUDA
    else:  # a GPU without onnxruntime-gpu: CPU, and the reason says why
        assert choice.backend is Backend.CPU and "no GPU runtime" in choice.reason


def test_tensorrt_sessions_get_a_dynamic_batch_profile_and_a_keyed_engine_folder(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from models import registry
    from models.runtime import backend

    monkeypatch.setattr(backend, "gpu_name", lambda: "NVIDIA H200")
    trt = backend.BackendChoice(backend.Backend.CUDA, "tensorrt", "test")
    path = registry.get_model("centernet").path
    assert path is not None
    name, options = backend.onnx_providers(trt, path, tmp_path, max_batch=4)[0]
    assert name == "TensorrtExecutionProvider" and options["trt_fp16_enable"] is True
    assert options["trt_profile_min_shapes"] == "images:1x512x512x3"
    assert options["trt_profile_max_shapes"] == "images:4x512x512x3"
    assert Path(options["trt_engine_cache_path"]).parent == tmp_path and Path(options["trt_engine_cache_path"]).is_dir()
    shared = backend.onnx_providers(trt, path, tmp_path, max_batch=None)[0][1]
    assert not any(key.startswith("trt_profile") for key in shared), "a list shared by two models has no profile"
    cpu = backend.BackendChoice(backend.Backend.CPU, "onnxruntime-cpu", "test")
    assert backend.onnx_providers(cpu, path, tmp_path) == ["CPUExecutionProvider"]
