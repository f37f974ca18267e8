"""The Serve config and the cluster launcher config are valid (validated, not run, in CI)."""

from __future__ import annotations

import importlib
from pathlib import Path

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
