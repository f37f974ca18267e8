"""The one L2 normalisation: unit rows, zero rows stay zero, float32 out, one vector or a batch."""

from __future__ import annotations

import numpy as np

from kernels.vectors import l2_normalise


def test_rows_become_unit_length_and_zero_rows_stay_zero() -> None:
    out = l2_normalise(np.array([[3.0, 4.0], [0.0, 0.0]]))
    np.testing.assert_allclose(out, [[0.6, 0.8], [0.0, 0.0]])
    assert out.dtype == np.float32


def test_one_vector_and_the_input_is_left_alone() -> None:
    vector = np.array([0.0, 2.0, 0.0], np.float32)
    out = l2_normalise(vector)
    np.testing.assert_array_equal(out, [0.0, 1.0, 0.0])
    np.testing.assert_array_equal(vector, [0.0, 2.0, 0.0])
    assert out.shape == (3,)
    assert np.all(l2_normalise(np.zeros(4)) == 0)
