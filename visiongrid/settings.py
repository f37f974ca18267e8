"""The one settings class. Every limit, window and thread count is here so tests can shrink it.

Values come from environment variables prefixed ``VISIONGRID_`` (e.g. ``VISIONGRID_ORT_THREADS=2``)
or a ``.env`` file.
"""

from __future__ import annotations

from functools import lru_cache
from pathlib import Path

from pydantic import Field
from pydantic_settings import BaseSettings, SettingsConfigDict

from models import MODELS_DIR


class Settings(BaseSettings):
    model_config = SettingsConfigDict(env_prefix="VISIONGRID_", env_file=".env", extra="ignore")

    # --- models / inference -----------------------------------------------------------
    models_dir: Path = Field(MODELS_DIR, description="folder holding the ONNX models and MANIFEST")
    detector_model: str = Field("centernet", description="ONNX file stem of the default detector")
    ort_intra_op_threads: int = Field(
        2, ge=1, description="ONNX Runtime intra-op threads per session; set from the replica's CPU share"
    )
    ort_inter_op_threads: int = Field(1, ge=1)
    detector_batch_size: int = Field(1, ge=1, le=64, description="frames per detector call in the bare loop")
    detection_min_confidence: float = Field(0.3, ge=0.0, le=1.0, description="default score floor for image targets")

    # --- tracking ---------------------------------------------------------------------
    track_high_threshold: float = Field(0.4, ge=0.0, le=1.0, description="ByteTrack first-stage score")
    track_low_threshold: float = Field(0.1, ge=0.0, le=1.0, description="ByteTrack second-stage score floor")
    track_new_threshold: float = Field(0.45, ge=0.0, le=1.0, description="score needed to start a track")
    track_match_iou: float = Field(0.2, ge=0.0, le=1.0, description="min IoU to associate (1 - cost)")
    track_lost_buffer: int = Field(30, ge=0, description="sampled frames a lost track is kept")

    # --- decoding ---------------------------------------------------------------------
    default_sampling_fps: float = Field(1.0, gt=0, description="contract default: 1 frame per second")
    default_max_frames: int = Field(3000, ge=1, description="contract default for max_frames")
    max_video_pixels: int = Field(4096 * 2160, ge=1, description="frames larger than this are refused")


@lru_cache(maxsize=1)
def get_settings() -> Settings:
    """Process-wide settings; tests build their own ``Settings(...)`` instead of patching this."""
    return Settings()
