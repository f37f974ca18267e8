"""BERT encoder forward pass in NumPy, for sentence embeddings without torch.

The text embedder (all-MiniLM-L6-v2: 6 layers, 384 wide, 12 heads) is a plain BERT encoder
followed by mean pooling over the real tokens and L2 normalisation, which is what
sentence-transformers computes for that model (``Transformer → Pooling(mean) → Normalize``).
This module holds only the arithmetic over arrays; reading the safetensors file and the
tokenizer is the caller's job (:mod:`models.runtime.text_embedder`).

Shapes: ``ids``/``mask``/``type_ids`` are ``[B, L]`` (a right-padded batch; ``mask`` is 1 on real
tokens, 0 on padding), hidden states are ``[B, L, D]``. Everything runs in float32 through
batched matmuls (BLAS); there is no Python loop over tokens, only over the layers.
Padding never changes a sequence's result beyond float rounding: padded keys get an additive
``-1e30`` before the softmax (an exact zero weight) and padded positions are left out of the pool.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass

import numpy as np
import numpy.typing as npt
from scipy.special import erf

from kernels.vectors import l2_normalise

F32 = npt.NDArray[np.float32]

_MASKED = np.float32(-1e30)


@dataclass(frozen=True)
class BertConfig:
    hidden_size: int = 384
    num_hidden_layers: int = 6
    num_attention_heads: int = 12
    intermediate_size: int = 1536
    max_position_embeddings: int = 512
    layer_norm_eps: float = 1e-12
    hidden_act: str = "gelu"

    @classmethod
    def from_dict(cls, config: Mapping[str, object]) -> BertConfig:
        """From a Hugging Face ``config.json`` (unknown keys ignored; only exact-erf GELU is supported)."""
        fields = {name: config[name] for name in cls.__dataclass_fields__ if name in config}
        made = cls(**fields)  # type: ignore[arg-type]
        if made.hidden_act != "gelu":
            raise ValueError(f"unsupported hidden_act {made.hidden_act!r} (only 'gelu', the exact erf form)")
        if made.hidden_size % made.num_attention_heads:
            raise ValueError("hidden_size must be a multiple of num_attention_heads")
        return made


@dataclass(frozen=True)
class BertLayer:
    qkv_w: F32  # [D, 3D]: query, key and value projections side by side (input @ qkv_w)
    qkv_b: F32  # [3D]
    out_w: F32  # [D, D]
    out_b: F32
    ln1_g: F32
    ln1_b: F32
    ff1_w: F32  # [D, I]
    ff1_b: F32
    ff2_w: F32  # [I, D]
    ff2_b: F32
    ln2_g: F32
    ln2_b: F32


@dataclass(frozen=True)
class BertWeights:
    config: BertConfig
    word: F32  # [V, D]
    position: F32  # [P, D]
    token_type: F32  # [T, D]
    emb_ln_g: F32
    emb_ln_b: F32
    layers: tuple[BertLayer, ...]


def _f32(array: npt.ArrayLike) -> F32:
    return np.ascontiguousarray(array, dtype=np.float32)


def prepare_weights(tensors: Mapping[str, np.ndarray], config: BertConfig) -> BertWeights:
    """Hugging Face ``BertModel`` tensors (names as in its safetensors, an optional ``bert.`` prefix
    allowed) → float32 arrays laid out for ``x @ W`` (linear weights transposed once, QKV fused)."""
    prefix = "bert." if "bert.embeddings.word_embeddings.weight" in tensors else ""

    def get(name: str) -> np.ndarray:
        key = prefix + name
        if key not in tensors:
            raise KeyError(f"BERT weights lack {key!r}")
        return tensors[key]

    def linear_t(name: str) -> F32:
        return _f32(get(f"{name}.weight").T)

    layers = []
    for i in range(config.num_hidden_layers):
        p = f"encoder.layer.{i}."
        attn = p + "attention.self."
        layers.append(
            BertLayer(
                qkv_w=_f32(np.concatenate([get(f"{attn}{n}.weight").T for n in ("query", "key", "value")], axis=1)),
                qkv_b=_f32(np.concatenate([get(f"{attn}{n}.bias") for n in ("query", "key", "value")])),
                out_w=linear_t(p + "attention.output.dense"),
                out_b=_f32(get(p + "attention.output.dense.bias")),
                ln1_g=_f32(get(p + "attention.output.LayerNorm.weight")),
                ln1_b=_f32(get(p + "attention.output.LayerNorm.bias")),
                ff1_w=linear_t(p + "intermediate.dense"),
                ff1_b=_f32(get(p + "intermediate.dense.bias")),
                ff2_w=linear_t(p + "output.dense"),
                ff2_b=_f32(get(p + "output.dense.bias")),
                ln2_g=_f32(get(p + "output.LayerNorm.weight")),
                ln2_b=_f32(get(p + "output.LayerNorm.bias")),
            )
        )
    return BertWeights(
        config=config,
        word=_f32(get("embeddings.word_embeddings.weight")),
        position=_f32(get("embeddings.position_embeddings.weight")),
        token_type=_f32(get("embeddings.token_type_embeddings.weight")),
        emb_ln_g=_f32(get("embeddings.LayerNorm.weight")),
        emb_ln_b=_f32(get("embeddings.LayerNorm.bias")),
        layers=tuple(layers),
    )


def layer_norm(x: F32, gamma: F32, beta: F32, eps: float) -> F32:
    mean = x.mean(axis=-1, keepdims=True)
    centred = x - mean
    var = np.mean(centred * centred, axis=-1, keepdims=True)
    return (centred / np.sqrt(var + np.float32(eps)) * gamma + beta).astype(np.float32, copy=False)


def gelu(x: F32) -> F32:
    """Exact GELU, ``x·Φ(x)`` with the error function (Hugging Face ``"gelu"``)."""
    return (np.float32(0.5) * x * (np.float32(1.0) + erf(x * np.float32(1 / np.sqrt(2))))).astype(
        np.float32, copy=False
    )


def _softmax_last(x: F32) -> F32:
    x = x - x.max(axis=-1, keepdims=True)
    np.exp(x, out=x)
    x /= x.sum(axis=-1, keepdims=True)
    return x


def bert_encode(
    weights: BertWeights,
    ids: npt.NDArray[np.integer],
    mask: npt.NDArray[np.integer],
    type_ids: npt.NDArray[np.integer] | None = None,
) -> F32:
    """Token ids ``[B, L]`` → last hidden states ``float32 [B, L, D]``."""
    ids = np.asarray(ids)
    mask = np.asarray(mask)
    if ids.ndim != 2 or mask.shape != ids.shape:
        raise ValueError(f"ids and mask must be equal [B, L] arrays, got {ids.shape} and {mask.shape}")
    cfg = weights.config
    batch, length = ids.shape
    if length > cfg.max_position_embeddings:
        raise ValueError(f"sequence length {length} exceeds the model's {cfg.max_position_embeddings} positions")
    heads = cfg.num_attention_heads
    width = cfg.hidden_size
    head_dim = width // heads
    eps = cfg.layer_norm_eps

    types = np.zeros_like(ids) if type_ids is None else np.asarray(type_ids)
    x = weights.word[ids] + weights.position[:length] + weights.token_type[types]
    x = layer_norm(x, weights.emb_ln_g, weights.emb_ln_b, eps)

    # additive key mask [B, 1, 1, L]: 0 on real tokens, -1e30 on padding (exp → exactly 0)
    key_bias = np.where(mask[:, None, None, :] > 0, np.float32(0), _MASKED).astype(np.float32)
    scale = np.float32(1.0 / np.sqrt(head_dim))
    for layer in weights.layers:
        flat = x.reshape(batch * length, width)
        qkv = (flat @ layer.qkv_w + layer.qkv_b).reshape(batch, length, 3, heads, head_dim)
        q = qkv[:, :, 0].transpose(0, 2, 1, 3)  # [B, H, L, d]
        k = qkv[:, :, 1].transpose(0, 2, 3, 1)  # [B, H, d, L]
        v = qkv[:, :, 2].transpose(0, 2, 1, 3)
        scores = np.matmul(q * scale, k) + key_bias  # [B, H, L, L]
        context = np.matmul(_softmax_last(scores), v)  # [B, H, L, d]
        context_flat = context.transpose(0, 2, 1, 3).reshape(batch * length, width)
        attended = context_flat @ layer.out_w + layer.out_b
        flat = layer_norm(attended + flat, layer.ln1_g, layer.ln1_b, eps)
        hidden = gelu(flat @ layer.ff1_w + layer.ff1_b)
        flat = layer_norm(hidden @ layer.ff2_w + layer.ff2_b + flat, layer.ln2_g, layer.ln2_b, eps)
        x = flat.reshape(batch, length, width)
    return x


def mean_pool(hidden: F32, mask: npt.NDArray[np.integer]) -> F32:
    """Mean of the hidden states over real tokens: ``[B, L, D]`` → ``[B, D]`` (sentence-transformers' Pooling)."""
    weight = (np.asarray(mask) > 0).astype(np.float32)[:, :, None]
    total = (hidden * weight).sum(axis=1)
    count = np.maximum(weight.sum(axis=1), np.float32(1e-9))
    return (total / count).astype(np.float32, copy=False)


def sentence_embeddings(
    weights: BertWeights,
    ids: npt.NDArray[np.integer],
    mask: npt.NDArray[np.integer],
    type_ids: npt.NDArray[np.integer] | None = None,
) -> F32:
    """Padded token batch → unit-length sentence vectors ``float32 [B, D]`` (encode, mean-pool, normalise)."""
    if len(ids) == 0:
        return np.zeros((0, weights.config.hidden_size), dtype=np.float32)
    return l2_normalise(mean_pool(bert_encode(weights, ids, mask, type_ids), mask))
