"""The Serve config and the cluster launcher config are valid (validated, not run, in CI)."""

from __future__ import annotations

import importlib
from pathlib import Path

import pytest
import yaml
from ray.autoscaler._private.util import prepare_config, validate_config
from ray.serve.schema import ServeDeploySchema

ROOT = Path(__file__).resolve().parent.parent


def test_serve_config_validates_and_points_at_the_app_builder() -> None:
    config = ServeDeploySchema.model_validate(yaml.safe_load((ROOT / "serve_config.yaml").read_text()))
    (app,) = config.applications
    module, _, attribute = app.import_path.partition(":")
    builder = getattr(importlib.import_module(module), attribute)
    assert callable(builder)
    assert config.http_options.port != 8000, "8000 is Chroma's default port"


def test_cluster_yaml_is_a_valid_ray_cluster_config() -> None:
    raw = yaml.safe_load((ROOT / "cluster.yaml").read_text())
    validate_config(prepare_config(raw))  # raises on schema errors
    assert raw["max_workers"] >= 1
    assert any("--head" in command for command in raw["head_start_ray_commands"])
    assert all("--address" in cmd for cmd in raw["worker_start_ray_commands"] if "ray start" in cmd)


def test_cluster_yaml_has_head_cpu_and_gpu_node_types_and_starts_the_app() -> None:
    raw = yaml.safe_load((ROOT / "cluster.yaml").read_text())
    types = raw["available_node_types"]
    assert raw["head_node_type"] == "head" and {"head", "cpu_worker", "gpu_worker"} <= set(types)
    assert types["gpu_worker"]["resources"].get("GPU", 0) >= 1
    assert "GPU" not in types["cpu_worker"]["resources"]
    assert any("serve deploy serve_config.yaml" in command for command in raw["head_start_ray_commands"])


def test_serve_config_sets_the_autoscaling_of_every_model_deployment(monkeypatch: pytest.MonkeyPatch) -> None:
    from deployments.scaling import DEPLOYMENTS, replica_options
    from visiongrid.settings import Settings

    config = yaml.safe_load((ROOT / "serve_config.yaml").read_text())
    env = config["applications"][0]["runtime_env"]["env_vars"]
    for key, value in env.items():
        monkeypatch.setenv(key, value)
    settings = Settings()  # as a replica reads them
    for name in DEPLOYMENTS:
        assert f"VISIONGRID_SCALING_{name.upper()}" in env, name
        options = replica_options(settings, name)["autoscaling_config"]
        assert options["max_replicas"] >= options["min_replicas"] >= 0
    assert settings.scaling_detector.max_replicas == 8 and settings.scaling_ocr.min_replicas == 0
