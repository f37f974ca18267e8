"""The NumPy BERT kernel on a small random BERT: exact-erf GELU, LayerNorm, masking, pooling,
padding invariance and weight loading. (Agreement with sentence-transformers on the real
all-MiniLM-L6-v2 weights is tested in tests/deployments/test_text_embedder.py.)"""

from __future__ import annotations

import math

import numpy as np
import pytest

from kernels.bert import (
    BertConfig,
    BertWeights,
    bert_encode,
    gelu,
    layer_norm,
    mean_pool,
    prepare_weights,
    sentence_embeddings,
)
from kernels.vectors import l2_normalise

CONFIG = BertConfig(
    hidden_size=32, num_hidden_layers=2, num_attention_heads=4, intermediate_size=64, max_position_embeddings=40
)
VOCAB = 50


def random_tensors(config: BertConfig, seed: int = 0) -> dict[str, np.ndarray]:
    """Hugging Face BertModel tensor names and shapes (torch Linear weights are [out, in])."""
    rng = np.random.default_rng(seed)
    d, i = config.hidden_size, config.intermediate_size

    def w(*shape: int) -> np.ndarray:
        return (rng.standard_normal(shape) * 0.2).astype(np.float32)

    t = {
        "embeddings.word_embeddings.weight": w(VOCAB, d),
        "embeddings.position_embeddings.weight": w(config.max_position_embeddings, d),
        "embeddings.token_type_embeddings.weight": w(2, d),
        "embeddings.LayerNorm.weight": 1 + w(d),
        "embeddings.LayerNorm.bias": w(d),
    }
    for n in range(config.num_hidden_layers):
        p = f"encoder.layer.{n}."
        for name in ("query", "key", "value"):
            t[f"{p}attention.self.{name}.weight"] = w(d, d)
            t[f"{p}attention.self.{name}.bias"] = w(d)
        t[p + "attention.output.dense.weight"] = w(d, d)
        t[p + "attention.output.dense.bias"] = w(d)
        t[p + "intermediate.dense.weight"] = w(i, d)
        t[p + "intermediate.dense.bias"] = w(i)
        t[p + "output.dense.weight"] = w(d, i)
        t[p + "output.dense.bias"] = w(d)
        for ln in ("attention.output.LayerNorm", "output.LayerNorm"):
            t[f"{p}{ln}.weight"] = 1 + w(d)
            t[f"{p}{ln}.bias"] = w(d)
    return t


@pytest.fixture(scope="module")
def weights() -> BertWeights:
    return prepare_weights(random_tensors(CONFIG), CONFIG)


def pad(sequences: list[list[int]], length: int | None = None) -> tuple[np.ndarray, np.ndarray]:
    length = length or max(map(len, sequences))
    ids = np.zeros((len(sequences), length), np.int64)
    mask = np.zeros_like(ids)
    for row, seq in enumerate(sequences):
        ids[row, : len(seq)] = seq
        mask[row, : len(seq)] = 1
    return ids, mask


def reference_encode(tensors: dict[str, np.ndarray], config: BertConfig, ids: list[int]) -> np.ndarray:
    """One unpadded sequence, float64, head by head with explicit per-head loops: the textbook BERT."""
    t = {k: v.astype(np.float64) for k, v in tensors.items()}
    eps, heads = config.layer_norm_eps, config.num_attention_heads
    hd = config.hidden_size // heads

    def ln(x: np.ndarray, name: str) -> np.ndarray:
        mu, var = x.mean(-1, keepdims=True), x.var(-1, keepdims=True)
        return (x - mu) / np.sqrt(var + eps) * t[name + ".weight"] + t[name + ".bias"]

    def lin(x: np.ndarray, name: str) -> np.ndarray:
        return x @ t[name + ".weight"].T + t[name + ".bias"]

    n = len(ids)
    x = t["embeddings.word_embeddings.weight"][ids] + t["embeddings.position_embeddings.weight"][:n]
    x = ln(x + t["embeddings.token_type_embeddings.weight"][0], "embeddings.LayerNorm")
    erf = np.vectorize(math.erf)
    for layer in range(config.num_hidden_layers):
        p = f"encoder.layer.{layer}."
        q, k, v = (lin(x, f"{p}attention.self.{name}") for name in ("query", "key", "value"))
        ctx = np.zeros_like(x)
        for h in range(heads):
            s = slice(h * hd, (h + 1) * hd)
            scores = q[:, s] @ k[:, s].T / math.sqrt(hd)
            probs = np.exp(scores - scores.max(-1, keepdims=True))
            ctx[:, s] = (probs / probs.sum(-1, keepdims=True)) @ v[:, s]
        x = ln(lin(ctx, p + "attention.output.dense") + x, p + "attention.output.LayerNorm")
        inner = lin(x, p + "intermediate.dense")
        x = ln(lin(0.5 * inner * (1 + erf(inner / math.sqrt(2))), p + "output.dense") + x, p + "output.LayerNorm")
    return x


def test_gelu_is_the_exact_erf_form() -> None:
    x = np.linspace(-6, 6, 97, dtype=np.float32)
    expected = np.array([0.5 * v * (1 + math.erf(v / math.sqrt(2))) for v in x.astype(np.float64)])
    got = gelu(x)
    assert got.dtype == np.float32
    np.testing.assert_allclose(got, expected, rtol=1e-6, atol=1e-7)
    # the tanh approximation differs by ~1e-3 around |x| = 2: this is not it
    tanh_form = 0.5 * x * (1 + np.tanh(math.sqrt(2 / math.pi) * (x + 0.044715 * x**3)))
    assert np.abs(tanh_form - expected).max() > 1e-4


def test_layer_norm_and_normalise() -> None:
    rng = np.random.default_rng(1)
    x = rng.standard_normal((3, 5, 16)).astype(np.float32) * 7 + 3
    y = layer_norm(x, np.ones(16, np.float32), np.zeros(16, np.float32), 1e-12)
    np.testing.assert_allclose(y.mean(-1), 0, atol=1e-5)
    np.testing.assert_allclose(y.std(-1), 1, atol=1e-4)
    unit = l2_normalise(x[0])
    np.testing.assert_allclose(np.linalg.norm(unit, axis=1), 1, atol=1e-6)
    assert np.all(l2_normalise(np.zeros((2, 4), np.float32)) == 0)  # no NaN for a zero row


def test_mean_pool_ignores_padding() -> None:
    hidden = np.arange(2 * 3 * 2, dtype=np.float32).reshape(2, 3, 2)
    mask = np.array([[1, 1, 0], [1, 0, 0]])
    np.testing.assert_allclose(mean_pool(hidden, mask), [[1, 2], [6, 7]])


def test_encoder_matches_a_per_head_float64_reference(weights: BertWeights) -> None:
    tensors = random_tensors(CONFIG)
    sequences = [[1, 7, 9, 2], [1, 30, 31, 32, 33, 34, 35, 2], [1, 2]]
    ids, mask = pad(sequences)
    hidden = bert_encode(weights, ids, mask)
    assert hidden.shape == (3, 8, 32) and hidden.dtype == np.float32
    for row, seq in enumerate(sequences):
        expected = reference_encode(tensors, CONFIG, seq)
        np.testing.assert_allclose(hidden[row, : len(seq)], expected, rtol=1e-4, atol=1e-4)


def test_padding_and_batch_company_do_not_change_a_sentence(weights: BertWeights) -> None:
    short = [1, 5, 6, 2]
    long = [1, *range(10, 40), 2]
    alone = sentence_embeddings(weights, *pad([short]))
    padded = sentence_embeddings(weights, *pad([short], length=len(long)))
    together = sentence_embeddings(weights, *pad([long, short]))
    np.testing.assert_allclose(padded[0], alone[0], atol=1e-6)
    np.testing.assert_allclose(together[1], alone[0], atol=1e-6)
    np.testing.assert_allclose(together[0], sentence_embeddings(weights, *pad([long]))[0], atol=1e-6)
    np.testing.assert_allclose(np.linalg.norm(together, axis=1), 1, atol=1e-6)


def test_token_types_are_used(weights: BertWeights) -> None:
    ids, mask = pad([[1, 5, 6, 2]])
    zero = sentence_embeddings(weights, ids, mask)
    assert np.array_equal(zero, sentence_embeddings(weights, ids, mask, np.zeros_like(ids)))
    assert not np.allclose(zero, sentence_embeddings(weights, ids, mask, np.ones_like(ids)))


def test_empty_batch_and_bad_shapes(weights: BertWeights) -> None:
    empty = sentence_embeddings(weights, np.zeros((0, 0), np.int64), np.zeros((0, 0), np.int64))
    assert empty.shape == (0, 32) and empty.dtype == np.float32
    with pytest.raises(ValueError, match="equal"):
        bert_encode(weights, np.zeros((2, 3), np.int64), np.ones((2, 4), np.int64))
    with pytest.raises(ValueError, match="positions"):
        bert_encode(weights, *pad([[1] * 41]))


def test_weight_loading_accepts_a_prefix_and_names_what_is_missing() -> None:
    tensors = random_tensors(CONFIG)
    prefixed = prepare_weights({f"bert.{k}": v for k, v in tensors.items()}, CONFIG)
    plain = prepare_weights(tensors, CONFIG)
    np.testing.assert_array_equal(prefixed.layers[1].qkv_w, plain.layers[1].qkv_w)
    del tensors["encoder.layer.1.output.dense.bias"]
    with pytest.raises(KeyError, match=r"encoder\.layer\.1\.output\.dense\.bias"):
        prepare_weights(tensors, CONFIG)


def test_config_from_hugging_face_json() -> None:
    config = BertConfig.from_dict({"hidden_size": 384, "num_attention_heads": 12, "layer_norm_eps": 1e-12, "x": 1})
    assert config.hidden_size == 384 and config.num_hidden_layers == 6
    with pytest.raises(ValueError, match="gelu"):
        BertConfig.from_dict({"hidden_act": "gelu_new"})
    with pytest.raises(ValueError, match="multiple"):
        BertConfig.from_dict({"hidden_size": 30, "num_attention_heads": 4})
