"""Committed ONNX models, their MANIFEST, the registry, the class vocabularies they speak, and (in
``models.runtime``) the plain model classes that run them. Nothing here imports Ray Serve, pipelines
or HTTP code: deployments wrap these classes, in-process pipelines call them directly."""

from pathlib import Path

MODELS_DIR = Path(__file__).resolve().parent
