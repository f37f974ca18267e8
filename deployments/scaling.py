"""Replica options of each model deployment from ``Settings.scaling_<name>``: Ray Serve's
``autoscaling_config`` (min/max/initial replicas, target ongoing requests, up/downscale delays), or a
fixed ``num_replicas`` when ``autoscaling_enabled`` is off.

Scaled-to-zero deployments (OCR, face, the appearance and text embedders, vectors by default) hold
no CPU while a workload does not use them; the first request waits for a replica (Ray Serve queues
requests to a deployment with none and scales it up at once).
"""

from __future__ import annotations

from typing import Any, Final

from models.runtime.backend import BackendChoice, choose_backend, gpu_visible
from visiongrid.settings import Scaling, Settings

__all__ = [
    "DEPLOYMENTS",
    "actor_options",
    "backend_of",
    "detector_in_process",
    "replica_options",
    "scaling_of",
]

#: The model deployments that autoscale, by their settings name (``scaling_<name>``).
DEPLOYMENTS: Final[tuple[str, ...]] = ("detector", "ocr", "embedder", "face", "text_embedder", "vectors")


def detector_in_process(settings: Settings) -> bool:
    """Whether task workers and the ingress run the detector themselves (``detector_placement``).

    ``auto`` keeps the separate batched deployment where the detector is meant for a GPU (it asks for
    ``num_gpus``, its backend is forced to ``cuda``, or this machine has one) and runs it in-process
    everywhere else: on CPU the hop costs more than batching gives (see ``deployments/detector_client``).
    """
    if settings.detector_placement != "auto":
        return settings.detector_placement == "in_process"
    wants_gpu = settings.scaling_detector.num_gpus > 0
    wants_gpu = wants_gpu or settings.backend_overrides.get("detector", settings.inference_backend) == "cuda"
    return not (wants_gpu or gpu_visible())


def scaling_of(settings: Settings, name: str) -> Scaling:
    """``Settings.scaling_<name>``. With the detector in-process its deployment serves only the vectors
    deployment's image descriptions, so unless ``scaling_detector`` was set it idles at zero replicas."""
    scaling: Scaling = getattr(settings, f"scaling_{name}")
    chosen = f"scaling_{name}" in settings.model_fields_set
    if name == "detector" and not chosen and detector_in_process(settings):
        return scaling.model_copy(update={"min_replicas": 0, "initial_replicas": 0})
    return scaling


def actor_options(settings: Settings, name: str, num_cpus: float) -> dict[str, Any]:
    """``ray_actor_options`` of deployment ``name``: its CPU share and the custom resources that place it
    (a node type's resource in cluster.yaml, e.g. ``visiongrid_cpu``)."""
    options: dict[str, Any] = {"num_cpus": num_cpus}
    if scaling_of(settings, name).num_gpus:
        options["num_gpus"] = scaling_of(settings, name).num_gpus
    resources = scaling_of(settings, name).resources
    if resources:
        options["resources"] = dict(resources)
    return options


def backend_of(settings: Settings, name: str) -> BackendChoice:
    """The backend of deployment ``name`` in this replica (call it inside the replica: Ray sets
    ``CUDA_VISIBLE_DEVICES`` to the GPUs it was given, none when ``num_gpus`` is 0)."""
    return choose_backend(settings.backend_overrides.get(name, settings.inference_backend))


def replica_options(settings: Settings, name: str) -> dict[str, Any]:
    """The ``.options(...)`` replica part of deployment ``name``."""
    scaling = scaling_of(settings, name)
    if not settings.autoscaling_enabled:
        fixed = scaling.initial_replicas if scaling.initial_replicas is not None else scaling.min_replicas
        return {"num_replicas": max(1, fixed)}
    config: dict[str, Any] = {
        "min_replicas": scaling.min_replicas,
        "max_replicas": scaling.max_replicas,
        "initial_replicas": scaling.initial_replicas if scaling.initial_replicas is not None else scaling.min_replicas,
        "target_ongoing_requests": scaling.target_ongoing_requests,
        "upscale_delay_s": scaling.upscale_delay_s,
        "downscale_delay_s": scaling.downscale_delay_s,
    }
    if scaling.downscale_to_zero_delay_s is not None:
        config["downscale_to_zero_delay_s"] = scaling.downscale_to_zero_delay_s
    return {"autoscaling_config": config}
