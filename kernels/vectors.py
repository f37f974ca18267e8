"""Vector arithmetic every embedding shares: the one L2 normalisation.

Face descriptors, sentence vectors and the vectors stored for search are all compared by cosine, which
is a dot product once each row has unit length. One definition keeps them comparable. A row whose norm
is 0 is returned as it is (no NaN); every other row is divided by its norm. (The face and sentence
models' former copies divided by ``max(norm, 1e-12)``, torch's ``normalize``; the two differ only for
norms below 1e-12, which no model output reaches.)
"""

from __future__ import annotations

import numpy as np
import numpy.typing as npt

__all__ = ["l2_normalise"]


def l2_normalise(vectors: npt.ArrayLike) -> npt.NDArray[np.float32]:
    """``float32`` rows (the last axis) scaled to unit length; a zero row stays as it is.

    Works on one vector ``[D]`` as on a batch ``[N, D]``; the input is not modified.
    """
    array = np.asarray(vectors, dtype=np.float32)
    norms = np.linalg.norm(array, axis=-1, keepdims=True)
    return np.divide(array, norms, out=array.copy(), where=norms > 0)
