"""Which compute backend a model deployment runs on, chosen once at start-up.

``cuda`` when a GPU is visible, else ``cpu``; a setting can force either. On a GPU the runtime is,
in order of preference: TensorRT (through ONNX Runtime's TensorRT execution provider, FP16, engines
built once from the same ONNX and cached on disk under a key of model sha256 + GPU name + TensorRT
version), else ONNX Runtime's CUDA provider, else CPU with the reason said. The same ONNX files
serve every backend; what was chosen is reported in ``/v1/status`` and in each task's ``usage``.

Detection never imports a GPU library that is not installed and never initialises CUDA: it reads
ONNX Runtime's provider list and the NVIDIA device nodes, so it costs nothing on a CPU machine.
"""

from __future__ import annotations

import glob
import hashlib
import importlib.util
import os
from collections.abc import Sequence
from dataclasses import dataclass
from enum import StrEnum
from pathlib import Path
from typing import Any, Final, Literal

__all__ = [
    "CPU_COMPUTE",
    "Backend",
    "BackendChoice",
    "BackendUnavailableError",
    "Preference",
    "choose_backend",
    "engine_cache_key",
    "gpu_name",
    "gpu_visible",
    "onnx_providers",
    "session_providers",
    "tensorrt_version",
]

Preference = Literal["auto", "cpu", "cuda"]

_TRT: Final[str] = "TensorrtExecutionProvider"
_CUDA: Final[str] = "CUDAExecutionProvider"
_CPU: Final[str] = "CPUExecutionProvider"


class Backend(StrEnum):
    CPU = "cpu"
    CUDA = "cuda"


class BackendUnavailableError(RuntimeError):
    """``cuda`` was asked for where no GPU or no GPU runtime is present."""


@dataclass(frozen=True)
class BackendChoice:
    backend: Backend
    runtime: str  # onnxruntime-cpu | tensorrt | onnxruntime-cuda
    reason: str

    def as_usage(self) -> dict[str, str]:
        return {"backend": self.backend.value, "runtime": self.runtime}


#: What runs a task where nothing else was asked for or reported: ONNX Runtime on CPU, PyAV decoding.
CPU_COMPUTE: Final[dict[str, str]] = {"backend": "cpu", "runtime": "onnxruntime-cpu", "decoder": "pyav"}


def gpu_visible(environ: dict[str, str] | None = None, device_nodes: Sequence[str] | None = None) -> bool:
    """An NVIDIA GPU this process may use: a device node exists and ``CUDA_VISIBLE_DEVICES`` does not hide it."""
    env = os.environ if environ is None else environ
    visible = env.get("CUDA_VISIBLE_DEVICES")
    if visible is not None and visible.strip() in ("", "-1", "none", "NoDevFiles"):
        return False
    nodes = glob.glob("/dev/nvidia[0-9]*") if device_nodes is None else list(device_nodes)
    return bool(nodes)


def _ort_providers() -> list[str]:
    import onnxruntime as ort

    return list(ort.get_available_providers())


def _tensorrt_importable() -> bool:
    return importlib.util.find_spec("tensorrt") is not None or importlib.util.find_spec("tensorrt_libs") is not None


def choose_backend(
    preference: Preference = "auto",
    *,
    gpu: bool | None = None,
    providers: Sequence[str] | None = None,
    tensorrt: bool | None = None,
) -> BackendChoice:
    """The backend for ``preference``; ``gpu``/``providers``/``tensorrt`` default to this machine's."""
    if preference == "cpu":
        return BackendChoice(Backend.CPU, "onnxruntime-cpu", "forced by the setting")
    has_gpu = gpu_visible() if gpu is None else gpu
    if not has_gpu:
        if preference == "cuda":
            raise BackendUnavailableError("backend 'cuda' was asked for but no NVIDIA GPU is visible")
        return BackendChoice(Backend.CPU, "onnxruntime-cpu", "no GPU visible")
    available = _ort_providers() if providers is None else list(providers)
    trt = _tensorrt_importable() if tensorrt is None else tensorrt
    if trt and _TRT in available:
        return BackendChoice(Backend.CUDA, "tensorrt", "GPU visible, TensorRT importable")
    if _CUDA in available:
        return BackendChoice(Backend.CUDA, "onnxruntime-cuda", "GPU visible, no TensorRT: ONNX Runtime CUDA")
    if preference == "cuda":
        raise BackendUnavailableError(
            "backend 'cuda' was asked for but ONNX Runtime has no CUDA provider (install onnxruntime-gpu)"
        )
    return BackendChoice(Backend.CPU, "onnxruntime-cpu", "GPU visible but no GPU runtime installed: CPU")


def gpu_name() -> str:
    """The visible GPU's name (``nvidia-smi``), or ``"unknown-gpu"``: part of a TensorRT engine's key."""
    import subprocess

    try:
        out = subprocess.run(
            ["nvidia-smi", "--query-gpu=name", "--format=csv,noheader", "-i", "0"],
            capture_output=True,
            text=True,
            timeout=10,
            check=True,
        ).stdout.strip()
    except (OSError, subprocess.SubprocessError):
        return "unknown-gpu"
    return out or "unknown-gpu"


def tensorrt_version() -> str:
    """The installed TensorRT's version (``"none"`` without one): part of a TensorRT engine's key."""
    from importlib import metadata

    for name in ("tensorrt", "tensorrt-cu12", "tensorrt-cu13", "tensorrt-lean-cu12", "tensorrt-lean-cu13"):
        try:
            return metadata.version(name)
        except metadata.PackageNotFoundError:
            continue
    return "none"


def engine_cache_key(model_sha256: str, gpu_name: str, tensorrt_version: str) -> str:
    """The on-disk key of a TensorRT engine: it is valid only for that model, GPU and TensorRT build."""
    digest = hashlib.sha256(f"{model_sha256}\n{gpu_name}\n{tensorrt_version}".encode()).hexdigest()[:16]
    return f"{model_sha256[:12]}-{digest}"


def session_providers(choice: BackendChoice, cache_dir: Path | None = None, cache_key: str | None = None) -> list[Any]:
    """ONNX Runtime ``providers`` of a session on ``choice`` (CPU always last, as the fallback)."""
    if choice.runtime == "tensorrt":
        options: dict[str, Any] = {"trt_fp16_enable": True, "trt_engine_cache_enable": True}
        if cache_dir is not None:
            folder = cache_dir / (cache_key or "engines")
            folder.mkdir(parents=True, exist_ok=True)
            options["trt_engine_cache_path"] = str(folder)
        return [(_TRT, options), _CUDA, _CPU]
    if choice.runtime == "onnxruntime-cuda":
        return [_CUDA, _CPU]
    return [_CPU]


def _batch_profile(model_path: Path, max_batch: int) -> dict[str, str]:
    """TensorRT optimisation-profile options for a model whose first input has a dynamic batch: one
    engine serves batch 1..``max_batch`` instead of one engine being built per batch size seen."""
    import onnxruntime as ort

    model_input = ort.InferenceSession(str(model_path), providers=[_CPU]).get_inputs()[0]
    dims = list(model_input.shape)
    if not dims or isinstance(dims[0], int) or not all(isinstance(d, int) for d in dims[1:]):
        return {}  # fixed batch, or other dynamic axes: let TensorRT take shapes as they come
    rest = "x".join(str(d) for d in dims[1:])
    shapes = {
        name: f"{model_input.name}:{batch}x{rest}"
        for name, batch in (("min", 1), ("opt", max_batch), ("max", max_batch))
    }
    return {f"trt_profile_{name}_shapes": shape for name, shape in shapes.items()}


def onnx_providers(
    choice: BackendChoice, model_path: Path | None, cache_dir: Path, max_batch: int | None = 16
) -> list[Any]:
    """The providers of a session on ``model_path`` for ``choice``. On TensorRT: FP16, a
    dynamic-batch profile up to ``max_batch`` (``None``: none, for a list several models' sessions
    share), and an engine cache folder keyed by the model file's sha256, the GPU and the TensorRT
    version, so an engine is built once per machine kind and model."""
    if choice.runtime != "tensorrt":
        return session_providers(choice)
    sha = hashlib.sha256(model_path.read_bytes()).hexdigest() if model_path is not None else "unnamed"
    providers = session_providers(choice, cache_dir, engine_cache_key(sha, gpu_name(), tensorrt_version()))
    if model_path is not None and max_batch is not None:
        providers[0][1].update(_batch_profile(model_path, max_batch))
    return providers
