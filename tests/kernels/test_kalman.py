"""Constant-velocity box Kalman filter: hand-computed steps and convergence."""

from __future__ import annotations

import numpy as np
import pytest

from kernels.kalman import KalmanBoxFilter

# A box at centre (100, 200), aspect 0.5, height 80. With std weights 1/20 and 1/160:
#   position std  = h / 20  = 4   (initial: twice that, 8 -> variance 64)
#   velocity std  = h / 160 = 0.5 (initial: ten times that, 5 -> variance 25)
#   aspect: 1e-2 (variance 1e-4); aspect velocity: 1e-5 (variance 1e-10)
BOX = np.array([[100.0, 200.0, 0.5, 80.0]])


def test_initiate_mean_is_measurement_with_zero_velocity_and_diagonal_covariance() -> None:
    mean, cov = KalmanBoxFilter().initiate(BOX)
    assert mean.shape == (1, 8)
    assert cov.shape == (1, 8, 8)
    np.testing.assert_array_equal(mean[0], [100, 200, 0.5, 80, 0, 0, 0, 0])
    expected = np.diag([64.0, 64.0, 1e-4, 64.0, 25.0, 25.0, 1e-10, 25.0])
    np.testing.assert_allclose(cov[0], expected, rtol=1e-12, atol=0)


def test_initiate_is_vectorised_and_scales_with_height() -> None:
    _, cov = KalmanBoxFilter().initiate([[0, 0, 1, 40], [0, 0, 1, 160]])
    # Position variance (2 h / 20)^2: 16 for h=40, 256 for h=160.
    np.testing.assert_allclose(cov[:, 0, 0], [16.0, 256.0])
    # Velocity variance (10 h / 160)^2: 6.25 and 100.
    np.testing.assert_allclose(cov[:, 4, 4], [6.25, 100.0])


def test_predict_moves_mean_by_velocity_and_grows_covariance() -> None:
    kf = KalmanBoxFilter()
    mean, cov = kf.initiate(BOX)
    mean[0, 4:] = [2.0, -1.0, 0.0, 0.5]
    new_mean, new_cov = kf.predict(mean, cov)
    np.testing.assert_allclose(new_mean[0], [102, 199, 0.5, 80.5, 2, -1, 0, 0.5])
    # cx: P_pp = 64 + 25 (velocity, dt=1) + (80/20)^2 = 105; P_pv = 25; P_vv = 25 + (80/160)^2.
    assert new_cov[0, 0, 0] == pytest.approx(105.0)
    assert new_cov[0, 0, 4] == pytest.approx(25.0)
    assert new_cov[0, 4, 0] == pytest.approx(25.0)
    assert new_cov[0, 4, 4] == pytest.approx(25.25)
    assert np.all(np.diag(new_cov[0]) > np.diag(cov[0]))
    # The inputs are not modified in place.
    np.testing.assert_array_equal(mean[0, :4], BOX[0])


def test_update_by_hand() -> None:
    kf = KalmanBoxFilter()
    mean, cov = kf.initiate(BOX)
    # Innovation +10 in cx. S = 64 + (80/20)^2 = 80, gain 64/80 = 0.8:
    # cx = 100 + 0.8 * 10 = 108, variance 64 * (1 - 0.8) = 12.8.
    new_mean, new_cov = kf.update(mean, cov, [[110.0, 200.0, 0.5, 80.0]])
    np.testing.assert_allclose(new_mean[0], [108, 200, 0.5, 80, 0, 0, 0, 0], atol=1e-12)
    assert new_cov[0, 0, 0] == pytest.approx(12.8)
    assert new_cov[0, 3, 3] == pytest.approx(12.8)


def test_update_pulls_mean_between_prior_and_measurement_and_shrinks_covariance() -> None:
    kf = KalmanBoxFilter()
    mean, cov = kf.predict(*kf.initiate(BOX))
    measurement = np.array([[120.0, 180.0, 0.5, 90.0]])
    new_mean, new_cov = kf.update(mean, cov, measurement)
    for k in (0, 1, 3):
        low, high = sorted((mean[0, k], measurement[0, k]))
        assert low < new_mean[0, k] < high
    # Velocity moves in the direction of the innovation thanks to the predicted cross-covariance.
    assert new_mean[0, 4] > 0 and new_mean[0, 5] < 0 and new_mean[0, 7] > 0
    assert np.all(np.diag(new_cov[0]) < np.diag(cov[0]))
    np.testing.assert_allclose(new_cov[0], new_cov[0].T)
    assert np.all(np.linalg.eigvalsh(new_cov[0]) > 0)


def test_velocity_converges_for_constant_motion() -> None:
    kf = KalmanBoxFilter()
    velocity = np.array([3.0, -2.0, 0.0, 0.5])
    start = BOX[0]
    mean, cov = kf.initiate(start[None])
    for step in range(1, 41):
        mean, cov = kf.predict(mean, cov)
        mean, cov = kf.update(mean, cov, (start + step * velocity)[None])
    np.testing.assert_allclose(mean[0, 4:], velocity, atol=0.05)
    np.testing.assert_allclose(mean[0, :4], start + 40 * velocity, atol=0.1)


def test_velocity_converges_with_measurement_noise() -> None:
    rng = np.random.default_rng(0)
    kf = KalmanBoxFilter()
    velocity = np.array([4.0, 1.0, 0.0, 0.0])
    start = BOX[0]
    mean, cov = kf.initiate(start[None])
    for step in range(1, 101):
        noise = np.array([*rng.normal(0, 1.0, 2), 0.0, rng.normal(0, 1.0)])
        mean, cov = kf.predict(mean, cov)
        mean, cov = kf.update(mean, cov, (start + step * velocity + noise)[None])
    np.testing.assert_allclose(mean[0, 4:6], velocity[:2], atol=0.5)


def test_batch_equals_rows_one_at_a_time() -> None:
    kf = KalmanBoxFilter()
    boxes = np.array([[100.0, 200.0, 0.5, 80.0], [10.0, 20.0, 2.0, 30.0], [500.0, 50.0, 1.0, 200.0]])
    measured = boxes + np.array([[3.0, -1.0, 0.01, 2.0], [1.0, 1.0, 0.0, -1.0], [-5.0, 0.0, 0.0, 4.0]])
    mean, cov = kf.update(*kf.predict(*kf.initiate(boxes)), measured)
    for i in range(len(boxes)):
        row_mean, row_cov = kf.update(*kf.predict(*kf.initiate(boxes[i])), measured[i])
        np.testing.assert_allclose(mean[i], row_mean[0])
        np.testing.assert_allclose(cov[i], row_cov[0])


def test_update_rejects_mismatched_lengths() -> None:
    kf = KalmanBoxFilter()
    mean, cov = kf.initiate(BOX)
    with pytest.raises(ValueError, match="one measurement per track"):
        kf.update(mean, cov, np.zeros((2, 4)))


def test_empty_batch() -> None:
    kf = KalmanBoxFilter()
    mean, cov = kf.initiate(np.empty((0, 4)))
    assert mean.shape == (0, 8) and cov.shape == (0, 8, 8)
    mean, cov = kf.predict(mean, cov)
    mean, cov = kf.update(mean, cov, np.empty((0, 4)))
    assert mean.shape == (0, 8) and cov.shape == (0, 8, 8)
