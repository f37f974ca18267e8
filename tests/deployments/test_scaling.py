"""Replica options from the settings: autoscaling configs, scale-to-zero defaults, the fixed fallback."""

from __future__ import annotations

import pytest
from pydantic import ValidationError

from deployments.scaling import DEPLOYMENTS, replica_options
from visiongrid.settings import Scaling, Settings


def test_idle_deployments_scale_to_zero_by_default_and_the_detector_does_not() -> None:
    settings = Settings(detector_placement="deployment")  # in-process (the CPU default) it idles at zero
    configs = {name: replica_options(settings, name)["autoscaling_config"] for name in DEPLOYMENTS}
    assert configs["detector"]["min_replicas"] == 1
    assert all(configs[name]["min_replicas"] == 0 for name in ("ocr", "embedder", "face", "text_embedder", "vectors"))
    assert all(config["initial_replicas"] == config["min_replicas"] for config in configs.values())


def test_a_scaling_from_the_environment_and_the_fixed_fallback(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv(
        "VISIONGRID_SCALING_OCR", '{"min_replicas": 2, "max_replicas": 5, "downscale_to_zero_delay_s": 9}'
    )
    config = replica_options(Settings(), "ocr")["autoscaling_config"]
    assert (config["min_replicas"], config["max_replicas"], config["downscale_to_zero_delay_s"]) == (2, 5, 9)
    fixed = Settings(autoscaling_enabled=False, scaling_ocr=Scaling(min_replicas=0, max_replicas=2))
    assert replica_options(fixed, "ocr") == {"num_replicas": 1}  # min 0 still runs one without autoscaling
    assert replica_options(
        fixed.model_copy(update={"scaling_detector": Scaling(min_replicas=3, max_replicas=4)}), "detector"
    ) == {"num_replicas": 3}


@pytest.mark.parametrize(
    "values",
    [
        {"min_replicas": 3, "max_replicas": 2},
        {"min_replicas": 1, "max_replicas": 2, "initial_replicas": 5},
        {"min_replicas": -1},
        {"target_ongoing_requests": 0},
        {"upscale_delay_s": float("nan")},
        {"replicas": 2},
    ],
)
def test_bad_scalings_are_refused_when_settings_are_built(values: dict[str, object]) -> None:
    with pytest.raises(ValidationError):
        Scaling(**values)  # type: ignore[arg-type]
