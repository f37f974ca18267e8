"""The plain model classes: ONNX Runtime (or NumPy) sessions with their pre- and post-processing.

One module per model (``detector``, ``embedder``, ``face``, ``ocr``, ``text_embedder``) plus the
session factory (``session``) and the joint-call helper they share (``joint``). They know nothing of
Ray Serve, pipelines or HTTP: ``deployments/`` wraps each in a batching deployment, and the
in-process step models (``pipelines/local_models.py``), the bare loop and the tests call them
directly. Nothing is imported here, so importing one model does not load every runtime (RapidOCR,
tokenizers, ...).
"""
