"""The model registry: which ONNX models exist, what they do and how to feed them.

``models/registry.json`` is data, not code, so a user can register their own ONNX detector
(e.g. a YOLO export: ``"output_format": "yolo", "input_layout": "NCHW", "pad_value": 114,
"std": [255, 255, 255]``) by adding an entry and dropping the file beside it.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path
from typing import Literal

from models import MODELS_DIR

REGISTRY_FILE = "registry.json"


class UnknownModelError(KeyError):
    def __init__(self, name: str, known: list[str]) -> None:
        super().__init__(f"unknown model {name!r}; known models: {known}")
        self.name = name
        self.known = known


@dataclass(frozen=True)
class ModelEntry:
    name: str
    task: str
    path: Path | None
    output_format: str
    classes: str
    input_layout: Literal["NHWC", "NCHW"]
    pad_value: float
    mean: tuple[float, float, float]
    std: tuple[float, float, float]
    description: str
    package: str = ""
    dim: int | None = None


def load_registry(models_dir: Path = MODELS_DIR) -> dict[str, ModelEntry]:
    raw = json.loads((models_dir / REGISTRY_FILE).read_text())
    return {
        name: ModelEntry(
            name=name,
            task=entry["task"],
            path=models_dir / entry["file"] if entry.get("file") else None,
            output_format=entry["output_format"],
            classes=entry.get("classes", "coco80"),
            input_layout=entry.get("input_layout", "NHWC"),
            pad_value=float(entry.get("pad_value", 0.0)),
            mean=tuple(entry.get("mean", (0.0, 0.0, 0.0))),
            std=tuple(entry.get("std", (1.0, 1.0, 1.0))),
            description=entry.get("description", ""),
            package=entry.get("package", ""),
            dim=entry.get("dim"),
        )
        for name, entry in raw.items()
    }


def get_model(name: str, models_dir: Path = MODELS_DIR) -> ModelEntry:
    registry = load_registry(models_dir)
    if name not in registry:
        raise UnknownModelError(name, sorted(registry))
    return registry[name]
