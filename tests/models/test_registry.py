"""The model registry: the committed entry, unknown names, and a user-registered YOLO export."""

from __future__ import annotations

import hashlib
import json
from pathlib import Path

import pytest

from kernels.box_decoding import DECODERS
from models import MODELS_DIR
from models.registry import ModelEntry, UnknownModelError, get_model, load_registry


def test_committed_centernet_entry() -> None:
    entry = load_registry()["centernet"]
    assert entry == ModelEntry(
        name="centernet",
        task="detect",
        path=MODELS_DIR / "centernet.onnx",
        output_format="centernet",
        classes="coco80",
        input_layout="NHWC",
        pad_value=0.0,
        mean=(0.0, 0.0, 0.0),
        std=(1.0, 1.0, 1.0),
        description=entry.description,
    )
    assert "CenterNet" in entry.description
    assert get_model("centernet") == entry


def test_every_entry_has_a_decoder_and_a_file() -> None:
    for name, entry in load_registry().items():
        if entry.task == "detect":
            assert entry.output_format in DECODERS, name
        assert entry.input_layout in ("NHWC", "NCHW"), name
        # a model either is a committed file beside the registry or ships inside a pinned package
        assert (entry.path is not None and entry.path.is_file()) or entry.package, name


def test_committed_models_match_the_manifest() -> None:
    manifest = json.loads((MODELS_DIR / "MANIFEST").read_text())
    for name, entry in load_registry().items():
        if entry.path is None:  # ships inside a pinned package (the OCR models in rapidocr's wheel)
            assert entry.package, name
            continue
        assert name in manifest, name
        record = manifest[name]
        assert record["file"] == entry.path.name
        assert entry.path.stat().st_size == record["bytes"]  # not an LFS pointer or a truncated copy
        assert hashlib.sha256(entry.path.read_bytes()).hexdigest() == record["sha256"]


def test_unknown_model() -> None:
    with pytest.raises(UnknownModelError) as info:
        get_model("yolov99")
    error = info.value
    assert isinstance(error, KeyError)
    assert error.name == "yolov99"
    assert "centernet" in error.known
    assert error.known == sorted(error.known)
    assert "'yolov99'" in str(error) and "centernet" in str(error)


def _write_registry(directory: Path, entries: dict[str, dict[str, object]]) -> Path:
    (directory / "registry.json").write_text(json.dumps(entries))
    return directory


def test_user_registered_yolo_entry(tmp_path: Path) -> None:
    models_dir = _write_registry(
        tmp_path,
        {
            "yolo11n": {
                "task": "detect",
                "file": "yolo11n.onnx",
                "output_format": "yolo",
                "input_layout": "NCHW",
                "pad_value": 114,
                "std": [255, 255, 255],
            }
        },
    )
    entry = get_model("yolo11n", models_dir)
    assert entry.path == tmp_path / "yolo11n.onnx"
    assert entry.output_format == "yolo" and entry.output_format in DECODERS
    assert entry.input_layout == "NCHW"
    assert entry.pad_value == 114.0 and isinstance(entry.pad_value, float)
    assert entry.std == (255, 255, 255)
    # Defaults for what the entry left out.
    assert entry.mean == (0.0, 0.0, 0.0)
    assert entry.classes == "coco80"
    assert entry.description == ""
    # That registry replaces, not extends, the committed one.
    with pytest.raises(UnknownModelError) as info:
        get_model("centernet", models_dir)
    assert info.value.known == ["yolo11n"]


def test_unknown_model_lists_known_names_sorted(tmp_path: Path) -> None:
    entry = {"task": "detect", "file": "x.onnx", "output_format": "yolo"}
    models_dir = _write_registry(tmp_path, {"b": entry, "yolo11n": entry, "a": entry})
    with pytest.raises(UnknownModelError) as info:
        get_model("c", models_dir)
    assert info.value.known == ["a", "b", "yolo11n"]


def test_minimal_entry_defaults(tmp_path: Path) -> None:
    models_dir = _write_registry(tmp_path, {"m": {"task": "detect", "file": "m.onnx", "output_format": "centernet"}})
    entry = load_registry(models_dir)["m"]
    assert (entry.input_layout, entry.pad_value, entry.std) == ("NHWC", 0.0, (1.0, 1.0, 1.0))
