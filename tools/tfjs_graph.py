"""TF.js graph models as TensorFlow ``GraphDef`` s (the inner half: runs inside the converter venv).

TF.js stores a graph as JSON plus weight shards, strips attributes TensorFlow needs and fuses ops
TensorFlow lacks; this module rebuilds a plain ``GraphDef`` from them, and names the ONNX outputs.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

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


def patch_numpy_for_tf2onnx() -> None:
    """tf2onnx 1.17 still calls np.product / np.cast, which NumPy 2 removed."""
    import numpy as np

    if not hasattr(np, "product"):
        np.product = np.prod  # type: ignore[attr-defined]
    if not hasattr(np, "cast"):
        np.cast = {  # type: ignore[attr-defined]
            dtype: (lambda value, _dtype=dtype: np.asarray(value, dtype=_dtype))
            for dtype in (np.float16, np.float32, np.float64, np.int32, np.int64, np.uint8, np.bool_)
        }


def load_tfjs_weights(model_json: dict[str, Any], folder: Path) -> dict[str, Any]:
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


def graph_def_from_tfjs(model_json: dict[str, Any], weights: dict[str, Any]) -> Any:
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


def name_io(model: Any, output_name: str | tuple[str, ...]) -> None:
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


def run_original(graph_def: Any, feeds: dict[str, Any], fetches: list[str]) -> list[Any]:
    """Run the TF.js graph as it is (batch 1) in a TF1 session: the reference for checks."""
    import tensorflow as tf

    with tf.Graph().as_default() as graph:
        tf.graph_util.import_graph_def(graph_def, name="")
        with tf.compat.v1.Session(graph=graph) as session:
            return list(session.run(fetches, {f"{name}:0": value for name, value in feeds.items()}))
