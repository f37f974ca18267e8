"""The one settings class. Every limit, window and thread count is here so tests can shrink it.

Values come from environment variables prefixed ``VISIONGRID_`` (e.g. ``VISIONGRID_ORT_THREADS=2``)
or a ``.env`` file.
"""

from __future__ import annotations

from functools import lru_cache
from pathlib import Path
from typing import Annotated, Final, Literal
from urllib.parse import urlsplit

from pydantic import BaseModel, ConfigDict, Field, StringConstraints, field_validator, model_validator
from pydantic_settings import BaseSettings, SettingsConfigDict

from models import MODELS_DIR

#: Names no external provider may take: they select the built-in description (``pipelines.describe``).
RESERVED_PROVIDER_NAMES: Final = frozenset({"visiongrid-describe", "builtin"})

_Text = Annotated[str, StringConstraints(strip_whitespace=True, min_length=1)]


class VLMProviderConfig(BaseModel):
    """One external OpenAI-compatible vision-language endpoint of the ``describe`` step.

    Checked when :class:`Settings` is built, so a bad entry stops start-up with the entry and field
    named (``vlm_providers.0.url``) instead of failing a task at its first description.
    """

    model_config = ConfigDict(extra="forbid", frozen=True)

    name: _Text = Field(description="what a request's `model` names to pick this provider; unique")
    url: _Text = Field(description="API base URL, e.g. http://host:8000/v1 (chat/completions is appended)")
    model: _Text = Field(description="the provider's model name sent in each request")
    api_key: str = Field("", repr=False, description="sent as a Bearer token when set; kept out of logs")
    timeout_s: float | None = Field(None, gt=0, allow_inf_nan=False, description="request timeout; none: vlm_timeout_s")

    @field_validator("api_key", mode="before")
    @classmethod
    def _no_key(cls, value: object) -> object:
        return "" if value is None else value

    @field_validator("name")
    @classmethod
    def _not_reserved(cls, name: str) -> str:
        if name in RESERVED_PROVIDER_NAMES:
            raise ValueError(f"{name!r} is reserved for the built-in description")
        return name

    @field_validator("url")
    @classmethod
    def _http_base_url(cls, url: str) -> str:
        parts = urlsplit(url)
        if parts.scheme not in ("http", "https") or not parts.netloc:
            raise ValueError(f"must be an http(s) base URL like http://host:8000/v1, got {url!r}")
        return url.rstrip("/")


class Scaling(BaseModel):
    """Ray Serve autoscaling of one model deployment (``VISIONGRID_SCALING_OCR='{"min_replicas": 1}'``).

    ``min_replicas: 0`` scales the deployment to zero when idle: on a 2-core machine an idle replica
    still costs CPU (the detect-only path fell from 0.77x to 0.59x of the bare loop when the idle
    vision and vector replicas were added). The first request then waits for a replica to start
    (Ray Serve queues it; nothing times out) — the cold start ``benchmarks/run.py`` measures.
    """

    model_config = ConfigDict(extra="forbid", frozen=True)

    min_replicas: int = Field(1, ge=0, le=1000)
    max_replicas: int = Field(1, ge=1, le=1000)
    initial_replicas: int | None = Field(None, ge=0, le=1000, description="replicas at start (default: min)")
    target_ongoing_requests: float = Field(4.0, gt=0, allow_inf_nan=False, description="per replica, to scale on")
    upscale_delay_s: float = Field(2.0, ge=0, allow_inf_nan=False)
    downscale_delay_s: float = Field(60.0, ge=0, allow_inf_nan=False, description="idle this long before scaling down")
    resources: dict[str, float] = Field(
        default_factory=dict, description='custom Ray resources per replica, to place it (e.g. {"visiongrid_gpu": 0.1})'
    )
    num_gpus: float = Field(0.0, ge=0, allow_inf_nan=False, description="GPU share per replica")
    downscale_to_zero_delay_s: float | None = Field(
        None,
        ge=0,
        allow_inf_nan=False,
        description="idle this long before the last replica goes (default: downscale_delay_s)",
    )

    @model_validator(mode="after")
    def _ordered(self) -> Scaling:
        if self.min_replicas > self.max_replicas:
            raise ValueError("min_replicas must not exceed max_replicas")
        if self.initial_replicas is not None and not self.min_replicas <= self.initial_replicas <= self.max_replicas:
            raise ValueError("initial_replicas must lie between min_replicas and max_replicas")
        return self


_SCALE_TO_ZERO = Scaling(min_replicas=0, max_replicas=2, target_ongoing_requests=8.0)


class Settings(BaseSettings):
    model_config = SettingsConfigDict(env_prefix="VISIONGRID_", env_file=".env", extra="ignore")

    # --- models / inference -----------------------------------------------------------
    models_dir: Path = Field(MODELS_DIR, description="folder holding the ONNX models and MANIFEST")
    detector_model: str = Field("centernet", description="ONNX file stem of the default detector")
    inference_backend: Literal["auto", "cpu", "cuda"] = Field(
        "auto", description="where model replicas run: cuda when a GPU is visible to the replica, else cpu"
    )
    backend_overrides: dict[str, Literal["auto", "cpu", "cuda"]] = Field(
        default_factory=dict, description='per deployment, e.g. {"detector": "cuda", "ocr": "cpu"}'
    )
    engine_cache_dir: Path = Field(Path(".cache/engines"), description="TensorRT engines built from the ONNX models")
    ort_intra_op_threads: int = Field(
        2, ge=1, description="ONNX Runtime intra-op threads per session; set from the replica's CPU share"
    )
    ort_inter_op_threads: int = Field(1, ge=1)
    detector_batch_size: int = Field(1, ge=1, le=64, description="frames per detector call in the bare loop")
    detection_min_confidence: float = Field(0.3, ge=0.0, le=1.0, description="default score floor for image targets")

    # --- vision steps (OCR, appearance feature, face, describe) ----------------------
    appearance_model: str = Field("appearance", description="registry name of the appearance-feature model")
    face_detector_model: str = Field("blazeface", description="registry name of the face detector")
    face_descriptor_model: str = Field("faceres", description="registry name of the face descriptor model")
    face_min_confidence: float = Field(0.5, ge=0.0, le=1.0, description="score floor for faces")
    model_num_cpus: float = Field(
        0.1, gt=0, description="CPU share of each OCR / feature / face replica; ORT threads = this rounded up"
    )
    model_max_batch_size: int = Field(8, ge=1, description="items batched across tasks per OCR/feature/face call")
    model_batch_wait_s: float = Field(
        0.0, ge=0, description="how long an OCR/feature/face batch waits to fill (0: take what is queued)"
    )
    max_image_pixels: int = Field(40_000_000, ge=1, description="images larger than this are refused before decoding")
    max_image_bytes: int = Field(20 * 1024**2, ge=1, description="largest image accepted, bytes")
    max_json_body_bytes: int = Field(
        64 * 1024**2,
        ge=1024,
        description="largest JSON request body (a base64 video or image batch included); refused before it is read",
    )
    max_batch_images: int = Field(64, ge=1, description="images per /v1/vision/batch request")
    vlm_providers: list[VLMProviderConfig] = Field(
        default_factory=list,
        description=(
            "external OpenAI-compatible vision-language endpoints for `describe`, in priority order: "
            'JSON list of {"name", "url", "model", "api_key", "timeout_s"}; empty = built-in description only'
        ),
    )
    vlm_timeout_s: float = Field(30.0, gt=0, description="default request timeout of a VLM provider")
    provider_max_retries: int = Field(2, ge=0, description="failovers to the next provider before the first chunk")

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

    # --- storage / database -----------------------------------------------------------
    data_dir: Path = Field(Path(".data"), description="local state: SQLite database, local S3 and Chroma data")
    database_url: str = Field("", description="SQLAlchemy URL; empty means SQLite in data_dir")
    task_retention_s: float = Field(7 * 24 * 3600, gt=0, description="terminal tasks older than this are purged")

    # --- object storage (S3) ----------------------------------------------------------
    s3_endpoint_url: str = Field(
        "http://127.0.0.1:8333", description="S3 endpoint; empty = AWS; loopback + s3_local_server = started locally"
    )
    s3_public_endpoint_url: str = Field(
        "", description="endpoint used ONLY when signing URLs handed to clients; empty = s3_endpoint_url"
    )
    s3_bucket: str = Field("visiongrid", min_length=3, max_length=63, description="bucket holding all projects")
    s3_access_key: str = Field("visiongrid", description="local dev default matching the local server config")
    s3_secret_key: str = Field("visiongrid-secret", description="local dev default matching the local server config")
    s3_region: str = Field("us-east-1", description="region used for SigV4 signing")
    storage_max_object_bytes: int = Field(50 * 1024**2, ge=1, description="largest object accepted, bytes")
    upload_chunk_bytes: int = Field(
        8 * 1024**2, ge=5 * 1024**2, description="chunk size of resumable uploads (S3 parts must be >= 5 MiB)"
    )
    max_upload_bytes: int = Field(2 * 1024**3, ge=1, description="largest resumable (chunked) upload, bytes")
    presign_default_expiry_s: int = Field(900, ge=1, description="lifetime of a presigned URL when none is asked")
    presign_max_expiry_s: int = Field(7 * 24 * 3600, ge=1, le=7 * 24 * 3600, description="SigV4 caps this at 7 days")
    s3_local_server: bool = Field(
        True, description="`visiongrid serve` starts a local SeaweedFS S3 server when the endpoint is loopback"
    )

    # --- vectors (Chroma) --------------------------------------------------------------
    chroma_url: str = Field("http://127.0.0.1:8100", description="Chroma server URL (not 8000: Serve's default)")
    chroma_local_server: bool = Field(
        True, description="`visiongrid serve` starts a local Chroma when the URL is loopback and nothing answers"
    )
    chroma_server_venv: Path = Field(
        Path(".venv-chroma"), description="virtual environment holding the Chroma server (its own: see README)"
    )
    chroma_hnsw_ef_search: int = Field(200, ge=1, description="HNSW search breadth (Chroma's default is too low)")
    chroma_hnsw_ef_construction: int = Field(200, ge=1, description="HNSW build breadth")
    chroma_hnsw_max_neighbors: int = Field(32, ge=2, description="HNSW graph degree (M)")
    chroma_timeout_s: float = Field(10.0, gt=0, description="Chroma request timeout; a down server fails fast")
    vectors_num_cpus: float = Field(0.1, gt=0, description="CPU share of the vectors and text-embedder replicas")
    max_index_items: int = Field(256, ge=1, description="items per index request")
    max_top_k: int = Field(1000, ge=1, description="largest top_k of a search")

    # --- task queue -------------------------------------------------------------------
    max_running_tasks: int = Field(2, ge=1, description="tasks running at once, cluster-wide")
    max_running_tasks_per_project: int = Field(2, ge=1, description="tasks running at once per project")
    claim_poll_interval_s: float = Field(0.5, gt=0, description="how often an idle worker looks for pending tasks")
    heartbeat_interval_s: float = Field(2.0, gt=0, description="how often a running task proves it is alive")
    heartbeat_timeout_s: float = Field(30.0, gt=0, description="a running task silent this long is failed")
    reaper_interval_s: float = Field(5.0, gt=0, description="how often stale and expired tasks are swept")
    max_processing_time_cap_s: float = Field(
        86400.0, gt=0, allow_inf_nan=False, description="largest Max-Processing-Time honoured; above it is clamped"
    )
    task_workers: int = Field(1, ge=1, description="task worker replicas")
    task_worker_resources: dict[str, float] = Field(
        default_factory=dict, description="custom Ray resources per task worker, to place it (a node type's)"
    )
    tasks_per_worker: int = Field(2, ge=1, description="tasks one worker replica runs concurrently")
    frame_queue_size: int = Field(8, ge=1, description="decoded frames buffered ahead of the models per task")
    detector_inflight: int = Field(
        2, ge=1, description="frames per task in flight to the detector at once (hides its round-trip latency)"
    )

    # --- media fetching ---------------------------------------------------------------
    allow_private_urls: bool = Field(False, description="allow loopback/private media URLs (tests, local use)")
    max_video_bytes: int = Field(2 * 1024**3, ge=1, description="largest video accepted, bytes")
    max_video_duration_s: float = Field(4 * 3600, gt=0, description="longest video accepted, seconds")
    media_fetch_timeout_s: float = Field(60.0, gt=0, description="connect/read timeout for media URLs")

    # --- platform: rate limits, idempotency -----------------------------------------------
    rate_limits_enabled: bool = Field(True, description="per-project sliding-window rate limits per endpoint category")
    rate_limit_window_s: float = Field(60.0, gt=0, description="length of the sliding rate-limit window")
    rate_limit_vision: int = Field(60, ge=1, description="vision requests per window and project (default)")
    rate_limit_video: int = Field(60, ge=1, description="video requests per window and project (default)")
    rate_limit_vectors: int = Field(120, ge=1, description="vectors requests per window and project (default)")
    rate_limit_storage: int = Field(300, ge=1, description="storage requests per window and project (default)")
    idempotency_ttl_s: float = Field(24 * 3600, gt=0, description="how long an Idempotency-Key is remembered")

    # --- platform: webhooks, lifecycle events ------------------------------------------------
    webhook_timeout_s: float = Field(10.0, gt=0, description="connect/read timeout of one webhook delivery attempt")
    webhook_max_attempts: int = Field(8, ge=1, description="attempts of one delivery before it is given up")
    webhook_backoff_base_s: float = Field(2.0, gt=0, description="first retry delay; doubles per attempt (+ jitter)")
    webhook_backoff_max_s: float = Field(3600.0, gt=0, description="longest retry delay")
    webhook_poll_interval_s: float = Field(0.5, gt=0, description="how often the delivery loop looks for due work")
    webhook_max_per_project: int = Field(50, ge=1, description="webhooks a project may register")
    progress_event_interval_s: float = Field(10.0, gt=0, description="at most one task.progress event per this")
    events_retention_s: float = Field(7 * 86400, gt=0, description="how long lifecycle events are kept for replay")
    events_poll_interval_s: float = Field(0.2, gt=0, description="how often an events stream checks the log")

    # --- platform: status, MCP -----------------------------------------------------------------
    latency_window_s: float = Field(3600.0, gt=0, description="window of /v1/status/latency's measurements")
    readiness_timeout_s: float = Field(2.0, gt=0, description="time each readiness check (DB, S3, Chroma) may take")
    mcp_enabled: bool = Field(True, description="serve the MCP endpoint at /mcp")

    # --- serving ----------------------------------------------------------------------
    host: str = Field("127.0.0.1", description="HTTP bind address of the Serve proxy")
    port: int = Field(8080, ge=1, le=65535, description="HTTP port (not 8000: Chroma's default)")
    ray_address: str = Field("", description="Ray cluster address; empty starts a local Ray")
    ray_num_cpus: int | None = Field(None, ge=1, description="CPUs a local Ray may use; default all")
    ray_dashboard: bool = Field(True, description="start the Ray dashboard with a local Ray (its URL is printed)")
    ray_dashboard_host: str = Field("127.0.0.1", description="bind address of the Ray dashboard")
    ray_dashboard_port: int = Field(8265, ge=1, le=65535, description="port of the Ray dashboard")
    metrics_export_port: int = Field(8089, ge=1, le=65535, description="Prometheus scrape port of Ray")
    ingress_max_ongoing_requests: int = Field(1000, ge=1, description="open SSE streams must never block calls")
    autoscaling_enabled: bool = Field(
        True, description="Ray Serve autoscaling of the model deployments; false: each runs max(1, min_replicas)"
    )
    scaling_detector: Scaling = Field(Scaling(min_replicas=1, max_replicas=2, target_ongoing_requests=8.0))
    scaling_ocr: Scaling = Field(_SCALE_TO_ZERO, description="idle OCR scales to zero")
    scaling_embedder: Scaling = Field(_SCALE_TO_ZERO, description="the appearance embedder (feature step)")
    scaling_face: Scaling = Field(_SCALE_TO_ZERO)
    scaling_text_embedder: Scaling = Field(_SCALE_TO_ZERO)
    scaling_vectors: Scaling = Field(_SCALE_TO_ZERO, description="the vectors deployment (the Chroma client)")
    detector_num_cpus: float = Field(
        1.3, gt=0, description="CPU share of a detector replica; its ORT threads = this rounded up"
    )
    progressive_decode: bool = Field(
        True,
        description="decode a task's video while it downloads (HTTP range requests, S3 ranged GETs; nothing on "
        "the node's disk); false: download it to the worker's disk first",
    )
    max_live_tasks: int = Field(
        2, ge=0, description="live-source tasks running at once, cluster-wide; apart from max_running_tasks"
    )
    max_live_tasks_per_project: int = Field(1, ge=0, description="live-source tasks one project runs at once")
    live_tasks_per_worker: int = Field(
        2, ge=0, description="live tasks one worker replica runs besides its tasks_per_worker file tasks"
    )
    live_reconnect_attempts: int = Field(5, ge=0, le=100, description="reopen a dropped live source this often")
    live_reconnect_backoff_s: float = Field(
        1.0,
        gt=0,
        le=600,
        allow_inf_nan=False,
        description="first reconnect delay; doubles each attempt (1, 2, 4, 8, 16 s)",
    )
    live_open_timeout_s: float = Field(10.0, gt=0, le=600, allow_inf_nan=False, description="connecting a live source")
    live_read_timeout_s: float = Field(
        10.0, gt=0, le=600, allow_inf_nan=False, description="silence after which a live source counts as dropped"
    )
    live_rtsp_transport: Literal["tcp", "udp"] = Field("tcp", description="RTSP transport of live sources")
    live_stop_grace_s: float = Field(
        1.0, ge=0, le=60, allow_inf_nan=False, description="a cancelled live task waits this long for its reader"
    )
    file_frame_policy: Literal["queue", "latest"] = Field(
        "queue",
        description="files: queue = every sampled frame is analysed (decoding waits for the models); latest = "
        "drop the oldest queued frame when analysis falls behind, as live sources always do",
    )
    video_decoder: Literal["auto", "pyav", "nvdec"] = Field(
        "auto",
        description="auto: NVDEC for H.264/HEVC where a GPU is visible, else PyAV on CPU (per task, with the "
        "reason in usage.decoder_note); pyav: always CPU",
    )
    detector_placement: Literal["auto", "deployment", "in_process"] = Field(
        "auto",
        description="where task workers and the ingress run the detector: in_process (no hop; auto on CPU) or "
        "its own batched deployment (auto where the detector is given a GPU)",
    )
    detector_spin_wait: bool = Field(
        False,
        description="let the detector's ONNX Runtime threads spin-wait between runs (faster detector, less CPU "
        "for everything else; the other model replicas never spin)",
    )
    detector_max_batch_size: int = Field(
        2,
        ge=1,
        description="frames batched across tasks per detector call; 2 is the CPU optimum measured on 2 cores "
        "(benchmarks/run.py: 13.7 frames/s at batch 2, less at 4 and 8); raise it on a GPU",
    )
    detector_batch_wait_s: float = Field(
        0.0,
        ge=0,
        description="how long a detector batch waits to fill; 0 takes what is queued (calls queue up while the "
        "model runs, so concurrent tasks still batch) and spares a lone synchronous request the wait",
    )
    sse_heartbeat_interval_s: float = Field(15.0, gt=0, description=": comment lines keep idle streams open")
    sse_terminal_grace_s: float = Field(5.0, ge=0, description="how long a stream of a reaped task waits for [DONE]")
    sse_poll_interval_s: float = Field(0.05, gt=0, description="how often a live stream checks the archive")

    @field_validator("vlm_providers")
    @classmethod
    def _unique_provider_names(cls, providers: list[VLMProviderConfig]) -> list[VLMProviderConfig]:
        seen: set[str] = set()
        for index, provider in enumerate(providers):
            if provider.name in seen:
                raise ValueError(f"vlm_providers[{index}] ({provider.name!r}): field 'name' repeats an earlier one")
            seen.add(provider.name)
        return providers

    def resolved_database_url(self) -> str:
        """The database URL, defaulting to SQLite inside ``data_dir``."""
        return self.database_url or f"sqlite:///{(self.data_dir / 'visiongrid.db').resolve()}"


@lru_cache(maxsize=1)
def get_settings() -> Settings:
    """Process-wide settings; tests build their own ``Settings(...)`` instead of patching this."""
    return Settings()
