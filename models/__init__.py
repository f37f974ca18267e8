"""Committed ONNX models, their MANIFEST, and the class vocabularies they speak."""

from pathlib import Path

MODELS_DIR = Path(__file__).resolve().parent
