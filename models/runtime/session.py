"""The one way an ONNX Runtime session is made: explicit thread counts, no spin-waiting, CPU unless told."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import onnxruntime as ort

__all__ = ["make_session"]


def make_session(
    path: str,
    intra_op_threads: int,
    inter_op_threads: int = 1,
    *,
    spin: bool = False,
    providers: Sequence[Any] | None = None,
) -> ort.InferenceSession:
    """An ONNX Runtime session with explicit thread counts, on ``providers`` (default: CPU; see
    :func:`models.runtime.backend.session_providers` for the GPU ones).

    ORT defaults to every core; several replicas on one machine would then oversubscribe it,
    so the thread count comes from the replica's CPU share (a setting). Its worker threads also
    spin-wait after each run by default, which on a small machine burns the CPU the other model
    replicas, the decoder and Serve need next; they sleep instead unless ``spin``.
    """
    options = ort.SessionOptions()
    spinning = "1" if spin else "0"
    options.add_session_config_entry("session.intra_op.allow_spinning", spinning)
    options.add_session_config_entry("session.inter_op.allow_spinning", spinning)
    options.intra_op_num_threads = intra_op_threads
    options.inter_op_num_threads = inter_op_threads
    options.execution_mode = ort.ExecutionMode.ORT_SEQUENTIAL
    options.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_ALL
    return ort.InferenceSession(path, sess_options=options, providers=list(providers or ["CPUExecutionProvider"]))
