"""The pure parts of benchmarks/run.py: arguments, ratio math, the table's shape (no Ray, no HTTP)."""

from __future__ import annotations

from pathlib import Path

import pytest

from benchmarks._runner_api import ColdStart, TaskRun, find_backend, processed_frames, task_body
from benchmarks._runner_local import ModelOnly, backend_of, cold_start_mode, local_settings, scale_to_zero_overrides
from benchmarks.run import HEADERS, SIZES, Results, ceiling, int_list, parse_args, percentile_ms, ratio, rows_of


def test_defaults_are_the_full_run() -> None:
    args = parse_args([])
    assert args.concurrency == [1, 4, 16]
    assert args.batches == [1, 2, 4, 8]
    assert (args.url, args.key, args.skip_local, args.quick) == (None, None, False, False)
    assert all(getattr(args, name) == full for name, (full, _) in SIZES.items())


def test_quick_shrinks_every_size_and_explicit_values_win() -> None:
    args = parse_args(["--quick", "--frames", "7", "--concurrency", "1,2"])
    assert args.frames == 7
    assert args.concurrency == [1, 2]
    assert all(getattr(args, name) == quick for name, (_, quick) in SIZES.items() if name != "frames")
    assert all(quick <= full for full, quick in SIZES.values())


def test_batch_one_is_always_measured() -> None:
    assert parse_args(["--batches", "4,8"]).batches == [1, 4, 8]


@pytest.mark.parametrize("argv", [["--url", "http://x"], ["--key", "k"], ["--concurrency", "0,4"], ["--batches", "a"]])
def test_bad_arguments_are_refused(argv: list[str]) -> None:
    with pytest.raises(SystemExit):
        parse_args(argv)


def test_remote_arguments() -> None:
    args = parse_args(["--url", "https://cluster:8080/", "--key", "vg_x", "--skip-local"])
    assert (args.url, args.key, args.skip_local) == ("https://cluster:8080/", "vg_x", True)


def test_int_list() -> None:
    assert int_list("1, 4,16") == [1, 4, 16]


def test_ratio_divides_by_the_lower_ceiling() -> None:
    assert ceiling(300.0, 25.0) == 25.0
    assert ratio(20.0, 300.0, 25.0) == pytest.approx(0.8)
    assert ratio(150.0, 200.0, 1000.0) == pytest.approx(0.75)
    assert ratio(20.0, None, 25.0) is None
    assert ratio(20.0, 300.0, None) is None


def test_percentile_is_nearest_rank_in_ms() -> None:
    samples = [i / 1000 for i in range(1, 101)]  # 1..100 ms
    assert percentile_ms(samples, 50) == pytest.approx(50.0)
    assert percentile_ms(samples, 99) == pytest.approx(99.0)
    assert percentile_ms([0.004], 99) == pytest.approx(4.0)


def test_task_run_fps_and_failures() -> None:
    assert TaskRun(4, 400, 10.0, 11.0).fps == pytest.approx(40.0)
    assert TaskRun(1, 0, 0.0, 0.0).fps == 0.0


def full_results() -> Results:
    return Results(
        decode_fps=300.0,
        model=ModelOnly({1: 20.0, 2: 24.0, 4: 25.0, 8: 22.0}, ["CPUExecutionProvider"], 2),
        runs=[TaskRun(1, 30, 2.0, 2.2), TaskRun(4, 120, 6.0, 6.5, ["t_1: failed None"])],
        detect_s=[0.05, 0.06, 0.07],
        cold=ColdStart("first request after deploy", 1.5, 0.4),
        backend="cpu (CPUExecutionProvider)",
    )


def test_table_shape_and_ratios() -> None:
    rows = rows_of(full_results(), 30)
    assert all(len(row) == len(HEADERS) for row in rows)
    by_name = {row[0]: row for row in rows}
    assert by_name["backend"][2] == "cpu (CPUExecutionProvider)"
    assert by_name["decode only"][2] == "300.0 frames/s"
    assert by_name["model only, batch 1"][2] == "20.0 frames/s"
    assert by_name["model only, best batch (4)"][2] == "25.0 frames/s"
    assert by_name["end-to-end detect+track, 1 task(s)"][2:] == ["15.0 frames/s", "0.60"]
    four = by_name["end-to-end detect+track, 4 task(s)"]
    assert four[2:] == ["20.0 frames/s", "0.80"]
    assert "1 not succeeded" in four[1]
    assert by_name["sync POST /v1/vision/detect"][2] == "p50 60.0 ms / p99 70.0 ms"
    assert by_name["cold start: OCR deployment"][2] == "1500 ms (next request 400 ms)"


def test_table_without_local_ceilings_has_no_ratio() -> None:
    results = Results(runs=[TaskRun(16, 480, 12.0, 12.5)])
    rows = rows_of(results, 30)
    assert [row[0] for row in rows] == ["backend", "end-to-end detect+track, 16 task(s)"]
    assert rows[1][3] == "n/a"


def test_backend_from_providers() -> None:
    assert backend_of(["CPUExecutionProvider"]) == "cpu"
    assert backend_of(["CUDAExecutionProvider", "CPUExecutionProvider"]) == "cuda"
    assert backend_of(["TensorrtExecutionProvider"]) == "cuda"


def test_backend_reported_by_status_is_found_anywhere() -> None:
    assert find_backend({"queue": {"pending": 0}}) is None
    assert find_backend({"deployments": [{"name": "detector", "backend": "cuda"}]}) == "cuda"


def test_cold_start_scales_ocr_to_zero_where_settings_can() -> None:
    overrides = scale_to_zero_overrides()
    assert overrides is not None, "Settings.scaling_ocr exists: the cold start is a real scale-from-zero"
    assert (overrides["scaling_ocr"].min_replicas, overrides["scaling_ocr"].initial_replicas) == (0, 0)
    assert "scaled to zero" in cold_start_mode(overrides)
    assert "first request after the app is deployed" in cold_start_mode(None)


def test_local_settings_take_the_overrides_and_the_concurrency(tmp_path: Path) -> None:
    settings = local_settings(tmp_path, 16, scale_to_zero_overrides())
    assert settings.scaling_ocr.min_replicas == 0
    assert (settings.max_running_tasks, settings.tasks_per_worker, settings.max_running_tasks_per_project) == (16,) * 3
    assert settings.allow_private_urls
    assert len({settings.port, settings.metrics_export_port}) == 2


def test_task_body_and_processed_frames() -> None:
    body = task_body("http://127.0.0.1:1/v.avi", 30)
    assert body["steps"] == [{"model": "detect"}]
    assert body["input"][0]["max_frames"] == 30
    assert processed_frames({"usage": {"processed_frames": 30}, "progress": {"processed_frames": 29}}) == 30
    assert processed_frames({"usage": None, "progress": {"processed_frames": 29}}) == 29
