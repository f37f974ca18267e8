"""ByteTrack multi-object tracking on :class:`~kernels.detections.Detections`.

ByteTrack (Zhang et al., ECCV 2022) is SORT with one idea added: detections the detector
is unsure of (low score) are not thrown away but used, in a second pass, to continue
tracks that the confident detections did not explain. Occluded objects typically drop to
low scores, so this keeps their ids through partial occlusion without letting low-score
clutter start tracks of its own.

Per frame (:meth:`ByteTracker.update`):

1. predict every track one step with the Kalman filter (:mod:`kernels.kalman`);
2. stage 1: match high-score detections (``>= high_threshold``) to tracked *and* lost
   tracks by IoU with the predicted boxes (min IoU ``match_iou``); a matched lost track is
   re-found and keeps its id;
3. stage 2: match the low-score detections (``low_threshold <= s < high_threshold``) to
   the still unmatched *tracked* tracks (min IoU 0.5, fixed as in ByteTrack); tracked
   tracks left unmatched become lost;
4. match the remaining high-score detections to last frame's unconfirmed tracks (min IoU
   0.3, as ByteTrack); matched ones become confirmed, the rest are dropped;
5. remaining high-score detections with score ``>= new_track_threshold`` start
   unconfirmed tracks (confirmed at once on the tracker's first frame);
6. lost tracks not matched for more than ``lost_buffer`` frames are removed.

All track state lives in parallel arrays (Kalman means and covariances, ids, classes,
states, last-matched frame), so prediction, IoU and the Kalman update are one vectorised
call per frame however many tracks there are. Association is the optimal assignment under
an IoU gate (see :func:`match_by_iou`).

Deliberate differences from the reference implementation, each for a reason:

* The stage 1 cost is ``1 - IoU``, not ByteTrack's score-fused ``1 - IoU * score``: the
  gate then means exactly "IoU >= match_iou" whatever the detector's calibration.
* Unconfirmed tracks are predicted like every other track (the reference skips them),
  so the Kalman update on the confirming frame sees the correct ``dt = 1`` covariance and
  picks up the velocity from the two boxes.
* Ids are handed out when a track is *confirmed*, not when it is created: unconfirmed
  tracks that die (one-frame false positives) consume no id, so ids seen by callers are
  1, 2, 3, ... without gaps.
* The reference's removal of near-duplicate tracked/lost pairs (IoU > 0.85) is omitted.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Final

import numpy as np
import numpy.typing as npt
from scipy.optimize import linear_sum_assignment

from kernels.boxes import box_iou, cxcyah_to_xyxy, xyxy_to_cxcyah
from kernels.detections import NO_TRACK, Detections
from kernels.kalman import MEASURE_DIM, STATE_DIM, KalmanBoxFilter

IndexArray = npt.NDArray[np.intp]

# Track states. "Unconfirmed" tracks were started last frame and await a second match.
TRACKED: Final = 0
LOST: Final = 1
UNCONFIRMED: Final = 2

SECOND_STAGE_IOU: Final = 0.5  # ByteTrack's fixed, stricter gate for low-score detections
UNCONFIRMED_IOU: Final = 0.3  # ByteTrack's gate (cost 0.7) for confirming new tracks


@dataclass(frozen=True)
class TrackerConfig:
    """ByteTrack parameters; frame counts are in *sampled* frames (one per ``update``).

    Attributes:
        high_threshold: detections at or above this score take part in stage 1.
        low_threshold: detections below this score are ignored; those between the two
            thresholds are only used in stage 2 to continue tracked tracks.
        new_track_threshold: minimum score of an unmatched detection to start a track.
        match_iou: minimum IoU of a stage 1 match (cost ``1 - IoU`` rejected above
            ``1 - match_iou``). Stage 2 uses a fixed 0.5 and confirmation a fixed 0.3, as
            ByteTrack does.
        lost_buffer: a lost track that has gone unmatched for more than this many frames
            is removed; until then it can be re-found with its id.
        class_aware: only associate detections and tracks of the same ``class_id``.
    """

    high_threshold: float = 0.5
    low_threshold: float = 0.1
    new_track_threshold: float = 0.6
    match_iou: float = 0.2
    lost_buffer: int = 30
    class_aware: bool = True


def match_by_iou(iou: npt.NDArray[np.floating], min_iou: float) -> tuple[IndexArray, IndexArray]:
    """Optimal one-to-one matching of rows to columns, gated at ``iou >= min_iou``.

    Returns ``(rows, cols)`` of the matched pairs. This is the assignment ``lap.lapjv``
    with ``cost_limit`` computes in ByteTrack: it minimises the summed cost ``1 - IoU`` of
    the matches plus ``(1 - min_iou) / 2`` for every row and column left unmatched.
    Subtracting the constant per-pair share turns that into a plain rectangular assignment
    with cost ``min_iou - IoU`` on admissible pairs and 0 (no better than leaving both
    unmatched) on the rest, which :func:`scipy.optimize.linear_sum_assignment` solves
    without enlarging the matrix.

    Simply giving inadmissible pairs a huge cost would instead maximise the *number* of
    matches, e.g. pairing two weak overlaps rather than keeping one strong one.
    """
    iou = np.asarray(iou, dtype=np.float64)
    empty = np.empty(0, dtype=np.intp)
    if iou.size == 0:
        return empty, empty
    admissible = iou >= min_iou
    if not admissible.any():
        return empty, empty
    # A tiny bonus so a pair at exactly min_iou is preferred to leaving it unmatched.
    cost = np.where(admissible, min_iou - iou - 1e-9, 0.0)
    rows, cols = linear_sum_assignment(cost)
    keep = admissible[rows, cols]
    return rows[keep].astype(np.intp), cols[keep].astype(np.intp)


class ByteTracker:
    """ByteTrack over a stream of :class:`Detections`, one call of :meth:`update` per frame.

    Track ids are positive, unique within this instance, increasing in order of
    confirmation and never reused; a lost track that is re-found keeps its id.
    """

    def __init__(self, config: TrackerConfig = TrackerConfig()) -> None:
        self.config = config
        self.kalman = KalmanBoxFilter()
        self.reset()

    def reset(self) -> None:
        """Forget all tracks and restart ids at 1 and the frame count at 0."""
        self.frame = 0
        self._next_id = 1
        self._mean = np.empty((0, STATE_DIM), dtype=np.float64)
        self._cov = np.empty((0, STATE_DIM, STATE_DIM), dtype=np.float64)
        self._ids = np.empty(0, dtype=np.int64)  # NO_TRACK while unconfirmed
        self._class = np.empty(0, dtype=np.int64)
        self._state = np.empty(0, dtype=np.int8)
        self._last_seen = np.empty(0, dtype=np.int64)  # frame of the last match

    def __len__(self) -> int:
        """Number of live tracks (tracked, lost and unconfirmed)."""
        return len(self._ids)

    @property
    def track_ids(self) -> npt.NDArray[np.int64]:
        """Ids of the confirmed (tracked or lost) tracks."""
        return self._ids[self._state != UNCONFIRMED].copy()

    def update(self, detections: Detections) -> Detections:
        """Advance one frame and return the detections that belong to confirmed tracks.

        The result is ``detections[rows].with_track_ids(ids)`` with ``rows`` ascending:
        the detector's own boxes, scores, classes and ``data`` columns, with ``track_id``
        set. Detections below ``low_threshold``, unmatched low-score detections and
        detections that only started an (unconfirmed) track are left out.
        """
        cfg = self.config
        self.frame += 1
        scores = detections.confidence
        high = np.flatnonzero(scores >= cfg.high_threshold)
        low = np.flatnonzero((scores >= cfg.low_threshold) & (scores < cfg.high_threshold))

        predicted = self._predict()  # 1.
        track_rows, det_rows, unconfirmed_left, high_left = self._associate(predicted, detections, high, low)  # 2.-4.
        self._correct(track_rows, detections.xyxy[det_rows])
        output_ids = self._ids[track_rows]
        # 6. (before 5, so the new tracks' indices are simply appended at the end)
        self._prune(unconfirmed_left)
        # 5. Start tracks from confident detections nobody claimed.
        starts = high_left[scores[high_left] >= cfg.new_track_threshold]
        started_ids = self._start(detections, starts)
        if started_ids is not None:  # the first frame: new tracks are confirmed and reported at once
            det_rows = np.concatenate([det_rows, starts])
            output_ids = np.concatenate([output_ids, started_ids])

        order = np.argsort(det_rows, kind="stable")
        return detections[det_rows[order]].with_track_ids(output_ids[order])

    def _predict(self) -> npt.NDArray[np.floating]:
        """Step 1: predict every track; its predicted boxes ``[T, 4]`` xyxy.

        Lost tracks stop changing size (as in ByteTrack), so a box that coasts for many frames does not
        shrink to nothing or balloon.
        """
        if len(self._ids):
            self._mean[self._state == LOST, 7] = 0.0
            self._mean, self._cov = self.kalman.predict(self._mean, self._cov)
        return cxcyah_to_xyxy(self._mean[:, :MEASURE_DIM])

    def _associate(
        self, predicted: npt.NDArray[np.floating], detections: Detections, high: IndexArray, low: IndexArray
    ) -> tuple[IndexArray, IndexArray, IndexArray, IndexArray]:
        """Steps 2-4: ``(track rows, detection rows)`` of every match (each track at most once), the
        unconfirmed tracks left unmatched, and the confident detections nobody claimed.

        Tracked tracks that neither stage matched become lost here; confirmed tracks get their ids.
        """
        det_boxes, det_class = detections.xyxy, detections.class_id
        matched_tracks: list[IndexArray] = []
        matched_dets: list[IndexArray] = []

        # 2. Stage 1: confident detections against tracked and lost tracks.
        pool = np.flatnonzero(self._state != UNCONFIRMED)
        rows, cols = match_by_iou(self._iou(predicted, pool, det_boxes, det_class, high), self.config.match_iou)
        matched_tracks.append(pool[rows])
        matched_dets.append(high[cols])
        pool_left = np.delete(pool, rows)
        high_left = np.delete(high, cols)

        # 3. Stage 2: unsure detections continue tracks that were tracked last frame.
        tracked_left = pool_left[self._state[pool_left] == TRACKED]
        rows, cols = match_by_iou(self._iou(predicted, tracked_left, det_boxes, det_class, low), SECOND_STAGE_IOU)
        matched_tracks.append(tracked_left[rows])
        matched_dets.append(low[cols])
        self._state[np.delete(tracked_left, rows)] = LOST

        # 4. Confirm last frame's new tracks with the confident detections still left.
        unconfirmed = np.flatnonzero(self._state == UNCONFIRMED)
        rows, cols = match_by_iou(self._iou(predicted, unconfirmed, det_boxes, det_class, high_left), UNCONFIRMED_IOU)
        confirmed = unconfirmed[rows]
        matched_tracks.append(confirmed)
        matched_dets.append(high_left[cols])
        self._ids[confirmed] = self._new_ids(len(confirmed))
        return (
            np.concatenate(matched_tracks),
            np.concatenate(matched_dets),
            np.delete(unconfirmed, rows),
            np.delete(high_left, cols),
        )

    def _correct(self, track_rows: IndexArray, boxes: npt.NDArray[np.float32]) -> None:
        """Kalman-correct every matched track at once with its detection's box (xyxy)."""
        if len(track_rows):
            self._mean[track_rows], self._cov[track_rows] = self.kalman.update(
                self._mean[track_rows], self._cov[track_rows], xyxy_to_cxcyah(boxes)
            )
            self._state[track_rows] = TRACKED
            self._last_seen[track_rows] = self.frame

    def _prune(self, unconfirmed_left: IndexArray) -> None:
        """Step 6: drop unconfirmed tracks that found no match and lost tracks past the buffer."""
        keep = np.ones(len(self._ids), dtype=bool)
        keep[unconfirmed_left] = False
        keep &= ~((self._state == LOST) & (self.frame - self._last_seen > self.config.lost_buffer))
        self._select(keep)

    def _start(self, detections: Detections, starts: IndexArray) -> npt.NDArray[np.int64] | None:
        """Step 5: start a track from each of ``starts``; on the tracker's first frame they are confirmed
        at once and their new ids are returned (else ``None``: they wait for a second match)."""
        if not len(starts):
            return None
        first_frame = self.frame == 1
        mean, cov = self.kalman.initiate(xyxy_to_cxcyah(detections.xyxy[starts]))
        ids = self._new_ids(len(starts)) if first_frame else np.full(len(starts), NO_TRACK, np.int64)
        self._append(mean, cov, ids, detections.class_id[starts], TRACKED if first_frame else UNCONFIRMED)
        return ids if first_frame else None

    def _iou(
        self,
        predicted: npt.NDArray[np.floating],
        tracks: IndexArray,
        det_boxes: npt.NDArray[np.float32],
        det_class: npt.NDArray[np.int64],
        dets: IndexArray,
    ) -> npt.NDArray[np.floating]:
        """IoU of the given tracks' predicted boxes with the given detections, ``[T, D]``.

        With ``class_aware`` a pair of different classes gets IoU 0, i.e. is inadmissible.
        """
        if len(tracks) == 0 or len(dets) == 0:
            return np.zeros((len(tracks), len(dets)))
        iou = box_iou(predicted[tracks], det_boxes[dets])
        if self.config.class_aware:
            iou = np.where(self._class[tracks][:, None] == det_class[dets][None, :], iou, 0.0)
        return iou

    def _new_ids(self, count: int) -> npt.NDArray[np.int64]:
        ids = np.arange(self._next_id, self._next_id + count, dtype=np.int64)
        self._next_id += count
        return ids

    def _select(self, keep: npt.NDArray[np.bool_]) -> None:
        if keep.all():
            return
        self._mean = self._mean[keep]
        self._cov = self._cov[keep]
        self._ids = self._ids[keep]
        self._class = self._class[keep]
        self._state = self._state[keep]
        self._last_seen = self._last_seen[keep]

    def _append(
        self,
        mean: npt.NDArray[np.float64],
        cov: npt.NDArray[np.float64],
        ids: npt.NDArray[np.int64],
        class_id: npt.NDArray[np.int64],
        state: int,
    ) -> None:
        count = len(ids)
        self._mean = np.concatenate([self._mean, mean])
        self._cov = np.concatenate([self._cov, cov])
        self._ids = np.concatenate([self._ids, ids])
        self._class = np.concatenate([self._class, class_id])
        self._state = np.concatenate([self._state, np.full(count, state, dtype=np.int8)])
        self._last_seen = np.concatenate([self._last_seen, np.full(count, self.frame, dtype=np.int64)])
