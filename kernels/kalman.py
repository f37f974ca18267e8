"""Constant-velocity Kalman filter for boxes, vectorised over tracks.

The tracker needs a motion model that says where each track's box should be on the next
sampled frame, so association can compare detections with *predicted* boxes rather than
stale ones, and so a track can coast through a few missed detections. This is the filter
of SORT, DeepSORT and ByteTrack:

* measurement ``z = (cx, cy, a, h)``: box centre, aspect ratio ``w / h`` and height
  (see :func:`kernels.boxes.xyxy_to_cxcyah`), chosen because the aspect ratio of a
  walking person or a driving car changes far less than its width does;
* state ``x = (cx, cy, a, h, vx, vy, va, vh)``: the measurement and its rate of change
  per sampled frame (``dt = 1``);
* noise standard deviations proportional to the box height (``std_weight_position`` /
  ``std_weight_velocity`` times ``h``), because pixel errors of a detector grow with the
  size of the object; the aspect ratio, being scale-free, gets small fixed deviations.

Every method takes a batch: means ``[N, 8]``, covariances ``[N, 8, 8]``, measurements
``[N, 4]``, so the tracker predicts and updates all its tracks with one call each.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import numpy.typing as npt

Array = npt.NDArray[np.float64]

STATE_DIM = 8
MEASURE_DIM = 4


class KalmanBoxFilter:
    """A linear Kalman filter with constant-velocity motion in ``(cx, cy, a, h)`` space.

    The filter holds no track state; it is a set of matrices and noise weights, and every
    method maps arrays to new arrays, leaving its inputs untouched.

    Args:
        std_weight_position: position noise as a fraction of box height (1/20 as in SORT).
        std_weight_velocity: velocity noise as a fraction of box height (1/160).
        dt: time step between two calls of :meth:`predict`, in sampled frames.
    """

    def __init__(
        self, std_weight_position: float = 1.0 / 20, std_weight_velocity: float = 1.0 / 160, dt: float = 1.0
    ) -> None:
        self.std_weight_position = std_weight_position
        self.std_weight_velocity = std_weight_velocity
        # x' = F x: each position component advances by its velocity times dt.
        self.motion = np.eye(STATE_DIM)
        self.motion[:MEASURE_DIM, MEASURE_DIM:] = dt * np.eye(MEASURE_DIM)
        # z = H x: the measurement is the first four state components.
        self.measure = np.eye(MEASURE_DIM, STATE_DIM)

    def initiate(self, measurements: npt.ArrayLike) -> tuple[Array, Array]:
        """Start tracks from unassociated measurements ``[N, 4]``.

        The mean is the measurement with zero velocity: a single box says nothing about
        motion. The covariance is diagonal and deliberately wide (twice the position noise,
        ten times the velocity noise) so the first few updates dominate the estimate.
        """
        z = _as_batch(measurements, MEASURE_DIM)
        mean = np.concatenate([z, np.zeros_like(z)], axis=1)
        height = z[:, 3]
        wp, wv = self.std_weight_position, self.std_weight_velocity
        std = np.stack(
            [
                2 * wp * height,
                2 * wp * height,
                np.full_like(height, 1e-2),
                2 * wp * height,
                10 * wv * height,
                10 * wv * height,
                np.full_like(height, 1e-5),
                10 * wv * height,
            ],
            axis=1,
        )
        return mean, _diag(std**2)

    def predict(self, mean: npt.ArrayLike, covariance: npt.ArrayLike) -> tuple[Array, Array]:
        """Advance all tracks by one time step: ``x' = F x``, ``P' = F P F^T + Q``.

        The process noise ``Q`` scales with each track's current height, so a big box is
        allowed to move (and its uncertainty grows) by more pixels than a small one.
        """
        x = _as_batch(mean, STATE_DIM)
        p = _as_cov_batch(covariance, STATE_DIM)
        height = x[:, 3]
        wp, wv = self.std_weight_position, self.std_weight_velocity
        std = np.stack(
            [
                wp * height,
                wp * height,
                np.full_like(height, 1e-2),
                wp * height,
                wv * height,
                wv * height,
                np.full_like(height, 1e-5),
                wv * height,
            ],
            axis=1,
        )
        new_mean = x @ self.motion.T
        new_cov = self.motion @ p @ self.motion.T + _diag(std**2)
        return new_mean, new_cov

    def project(self, mean: npt.ArrayLike, covariance: npt.ArrayLike) -> tuple[Array, Array]:
        """The state distribution in measurement space: ``H x`` and ``H P H^T + R``.

        ``R`` (measurement noise) again scales with the box height; the aspect ratio gets
        a fixed 0.1 deviation.
        """
        x = _as_batch(mean, STATE_DIM)
        p = _as_cov_batch(covariance, STATE_DIM)
        height = x[:, 3]
        wp = self.std_weight_position
        std = np.stack([wp * height, wp * height, np.full_like(height, 1e-1), wp * height], axis=1)
        return x[:, :MEASURE_DIM], p[:, :MEASURE_DIM, :MEASURE_DIM] + _diag(std**2)

    def update(
        self, mean: npt.ArrayLike, covariance: npt.ArrayLike, measurements: npt.ArrayLike
    ) -> tuple[Array, Array]:
        """Correct each track ``i`` with its associated measurement ``measurements[i]``.

        Standard Kalman correction with gain ``K = P H^T S^-1``. Because ``H`` selects the
        first four state components, ``H P`` is just ``P[:, :4, :]``; the gain is obtained
        by a batched linear solve (``S K^T = H P``) instead of an explicit inverse.
        """
        x = _as_batch(mean, STATE_DIM)
        p = _as_cov_batch(covariance, STATE_DIM)
        z = _as_batch(measurements, MEASURE_DIM)
        if len(z) != len(x):
            raise ValueError(f"update needs one measurement per track: {len(x)} tracks, {len(z)} measurements")
        projected_mean, projected_cov = self.project(x, p)
        gain_t = np.linalg.solve(projected_cov, p[:, :MEASURE_DIM, :])  # [N, 4, 8] = K^T
        innovation = z - projected_mean
        new_mean = x + np.einsum("nm,nms->ns", innovation, gain_t)
        # P' = P - K S K^T = P - K (H P), written with K^T to avoid extra transposes.
        new_cov = p - np.swapaxes(gain_t, 1, 2) @ p[:, :MEASURE_DIM, :]
        # Keep the covariance exactly symmetric despite round-off.
        new_cov = 0.5 * (new_cov + np.swapaxes(new_cov, 1, 2))
        return new_mean, new_cov


def _as_batch(values: npt.ArrayLike, width: int) -> Array:
    return np.asarray(values, dtype=np.float64).reshape(-1, width)


def _as_cov_batch(values: npt.ArrayLike, width: int) -> Array:
    return np.asarray(values, dtype=np.float64).reshape(-1, width, width)


def _diag(variances: npt.NDArray[Any]) -> Array:
    """``[N, D] -> [N, D, D]`` diagonal matrices."""
    count, dim = variances.shape
    out = np.zeros((count, dim, dim), dtype=np.float64)
    out[:, np.arange(dim), np.arange(dim)] = variances
    return out
