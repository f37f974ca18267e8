"""One converter per TF.js model: a batch-aware ``tf.function`` around the graph, checked against the
graph as it is, converted with tf2onnx (the inner half: runs inside the converter venv)."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from build_specs import ONNX_OPSET
from tfjs_graph import graph_def_from_tfjs, load_tfjs_weights, name_io, patch_numpy_for_tf2onnx, run_original


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

    patch_numpy_for_tf2onnx()
    model_json = json.loads(source.read_text())
    weights = load_tfjs_weights(model_json, source.parent)
    graph_def = graph_def_from_tfjs(model_json, weights)
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
    name_io(model_proto, output_name="detections")
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

    patch_numpy_for_tf2onnx()
    model_json = json.loads(source.read_text())
    weights = load_tfjs_weights(model_json, source.parent)
    reshapes = [n for n in model_json["modelTopology"]["node"] if n["op"] == "Reshape"]
    for node in reshapes:
        shape = weights[node["input"][1]]
        if shape[0] != 1:
            raise ValueError(f"{node['name']}: unexpected reshape target {shape}")
        weights[node["input"][1]] = np.asarray([-1, *shape[1:]], dtype=shape.dtype)
    graph_def = graph_def_from_tfjs(model_json, weights)
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
    s_a, b_a, s_b, b_b = run_original(graph_def, {placeholder.name: image / 127.5 - 1.0}, fetches)
    expected = np.concatenate([np.concatenate([s_a, b_a], 2), np.concatenate([s_b, b_b], 2)], 1)
    expected[..., 0] = 1 / (1 + np.exp(-expected[..., 0]))
    ours = detect(tf.constant(image)).numpy()
    if not np.allclose(expected, ours, atol=1e-4):
        raise AssertionError(f"blazeface wrapper differs from the graph: max {np.abs(expected - ours).max()}")
    model_proto, _ = tf2onnx.convert.from_function(detect, input_signature=detect.input_signature, opset=ONNX_OPSET)
    name_io(model_proto, output_name="raw")
    out.write_bytes(model_proto.SerializeToString())
    print(f"wrote {out} ({out.stat().st_size} bytes)")


def convert_faceres(source: Path, out: Path) -> None:
    """FaceRes: three named outputs, descriptor first (the batch check looks at output 0)."""
    import numpy as np
    import tensorflow as tf
    import tf2onnx

    patch_numpy_for_tf2onnx()
    model_json = json.loads(source.read_text())
    weights = load_tfjs_weights(model_json, source.parent)
    graph_def = graph_def_from_tfjs(model_json, weights)
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
    expected = run_original(graph_def, {placeholder.name: image}, fetches)
    for want, got in zip(expected, describe(tf.constant(image)), strict=True):
        if not np.allclose(want, got.numpy(), atol=1e-4):
            raise AssertionError("faceres wrapper differs from the graph")
    model_proto, _ = tf2onnx.convert.from_function(describe, input_signature=describe.input_signature, opset=ONNX_OPSET)
    name_io(model_proto, output_name=("descriptor", "gender", "age"))
    out.write_bytes(model_proto.SerializeToString())
    print(f"wrote {out} ({out.stat().st_size} bytes)")


CONVERTERS = {"centernet": convert_centernet, "blazeface": convert_blazeface, "faceres": convert_faceres}
