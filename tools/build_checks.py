"""Checks of built ONNX files and the manifest (run by the outer half, with ONNX Runtime, no TensorFlow)."""

from __future__ import annotations

import hashlib
import json
from pathlib import Path
from typing import Any

from build_specs import MANIFEST_PATH, MODELS_DIR


def sha256_of(path: Path) -> str:
    digest = hashlib.sha256()
    with path.open("rb") as handle:
        for block in iter(lambda: handle.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def verify_batching(onnx_path: Path) -> dict[str, Any]:
    """Run the ONNX at batch 1 and batch 4; report whether batch > 1 works and agrees."""
    import numpy as np
    import onnxruntime as ort

    session = ort.InferenceSession(str(onnx_path), providers=["CPUExecutionProvider"])
    inp = session.get_inputs()[0]
    height, width, channels = (int(d) for d in inp.shape[1:])
    rng = np.random.default_rng(0)
    batch = rng.uniform(0, 255, size=(4, height, width, channels)).astype(np.float32)
    singles = np.concatenate([session.run(None, {inp.name: batch[i : i + 1]})[0] for i in range(4)])
    try:
        batched = session.run(None, {inp.name: batch})[0]
    except Exception as error:
        return {"batch_gt_1": False, "batch_note": f"batch 4 failed: {error}"}
    max_diff = float(np.abs(batched - singles).max())
    agrees = bool(np.allclose(batched, singles, atol=1e-2))
    return {
        "batch_gt_1": agrees,
        "batch_note": f"batch 4 vs 4x batch 1: max |diff| = {max_diff:.2e}",
        "input_name": inp.name,
        "input_shape": [str(d) for d in inp.shape],
        "output_shape": [str(d) for d in session.get_outputs()[0].shape],
    }


def same_outputs(first: Path, second: Path) -> bool:
    """True when two ONNX models give the same outputs on the same random batch."""
    import numpy as np
    import onnxruntime as ort

    sessions = [ort.InferenceSession(str(path), providers=["CPUExecutionProvider"]) for path in (first, second)]
    inputs = [session.get_inputs()[0] for session in sessions]
    if [i.shape[1:] for i in inputs] != [inputs[0].shape[1:]] * 2:
        return False
    batch = np.random.default_rng(2).uniform(0, 255, size=(2, *inputs[0].shape[1:])).astype(np.float32)
    outputs = [session.run(None, {i.name: batch})[0] for session, i in zip(sessions, inputs, strict=True)]
    return bool(outputs[0].shape == outputs[1].shape and np.allclose(outputs[0], outputs[1], atol=1e-5))


def read_manifest() -> dict[str, dict[str, Any]]:
    if not MANIFEST_PATH.exists():
        return {}
    data: dict[str, dict[str, Any]] = json.loads(MANIFEST_PATH.read_text())
    return data


def write_manifest(manifest: dict[str, dict[str, Any]]) -> None:
    MANIFEST_PATH.write_text(json.dumps(manifest, indent=2, sort_keys=True) + "\n")


def check_manifest() -> int:
    """Exit non-zero if a committed model does not match its manifest entry."""
    failures = 0
    for name, entry in read_manifest().items():
        path = MODELS_DIR / entry["file"]
        actual = sha256_of(path) if path.exists() else "missing"
        status = "ok" if actual == entry["sha256"] else f"MISMATCH ({actual})"
        failures += status != "ok"
        print(f"{name}: {path.name} {status}")
    return 1 if failures else 0
