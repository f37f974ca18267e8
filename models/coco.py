"""COCO-80 class names and the aliases users may ask for, resolved to ids in one place.

A request may name classes the way its domain does ("pedestrian", "vehicle"); the pipeline
works with COCO ids, and the chunk builder reports the name the request used.
"""

from __future__ import annotations

from collections.abc import Iterable

COCO_CLASSES: tuple[str, ...] = (
    "person", "bicycle", "car", "motorcycle", "airplane", "bus", "train", "truck", "boat",
    "traffic light", "fire hydrant", "stop sign", "parking meter", "bench", "bird", "cat", "dog",
    "horse", "sheep", "cow", "elephant", "bear", "zebra", "giraffe", "backpack", "umbrella",
    "handbag", "tie", "suitcase", "frisbee", "skis", "snowboard", "sports ball", "kite",
    "baseball bat", "baseball glove", "skateboard", "surfboard", "tennis racket", "bottle",
    "wine glass", "cup", "fork", "knife", "spoon", "bowl", "banana", "apple", "sandwich", "orange",
    "broccoli", "carrot", "hot dog", "pizza", "donut", "cake", "chair", "couch", "potted plant",
    "bed", "dining table", "toilet", "tv", "laptop", "mouse", "remote", "keyboard", "cell phone",
    "microwave", "oven", "toaster", "sink", "refrigerator", "book", "clock", "vase", "scissors",
    "teddy bear", "hair drier", "toothbrush",
)  # fmt: skip

# Documented aliases (README "Classes"): name -> COCO names it stands for.
CLASS_ALIASES: dict[str, tuple[str, ...]] = {
    "pedestrian": ("person",),
    "people": ("person",),
    "human": ("person",),
    "automobile": ("car",),
    "vehicle": ("car", "truck", "bus", "motorcycle"),
    "motorbike": ("motorcycle",),
    "bike": ("bicycle",),
    "cyclist": ("bicycle",),
    "lorry": ("truck",),
    "aeroplane": ("airplane",),
    "plane": ("airplane",),
    "sofa": ("couch",),
    "tvmonitor": ("tv",),
    "television": ("tv",),
    "phone": ("cell phone",),
    "mobile phone": ("cell phone",),
    "animal": ("bird", "cat", "dog", "horse", "sheep", "cow", "elephant", "bear", "zebra", "giraffe"),
}

#: Classes of targets that frame-level steps create (not detector classes): a face found by the face
#: step, a line of text found by the OCR step when no detector target precedes it. Ids sit far above any
#: detector vocabulary so they never collide with a registered model's classes.
FACE_CLASS_ID: int = 1000
TEXT_CLASS_ID: int = 1001
STEP_CLASSES: dict[int, str] = {FACE_CLASS_ID: "face", TEXT_CLASS_ID: "text"}

_ID_BY_NAME = {name: index for index, name in enumerate(COCO_CLASSES)}
_ID_BY_NAME.update({name: class_id for class_id, name in STEP_CLASSES.items()})


class UnknownClassError(ValueError):
    """A requested class name is neither a COCO name nor a documented alias."""

    def __init__(self, name: str) -> None:
        super().__init__(f"unknown class {name!r}; use a COCO-80 name or one of the aliases {sorted(CLASS_ALIASES)}")
        self.name = name


def _normalise(name: str) -> str:
    return " ".join(name.strip().lower().replace("_", " ").split())


def class_ids_for(name: str) -> tuple[int, ...]:
    """COCO ids a requested class name stands for (case and underscores ignored)."""
    key = _normalise(name)
    if key in _ID_BY_NAME:
        return (_ID_BY_NAME[key],)
    if key in CLASS_ALIASES:
        return tuple(_ID_BY_NAME[target] for target in CLASS_ALIASES[key])
    raise UnknownClassError(name)


def resolve_classes(names: Iterable[str] | None) -> dict[int, str] | None:
    """Map each COCO id to the name the request used for it; ``None`` means every class.

    When two requested names cover the same id (e.g. "car" and "vehicle"), the first wins,
    so the reported name is deterministic.
    """
    if names is None:
        return None
    label_by_id: dict[int, str] = {}
    for name in names:
        for class_id in class_ids_for(name):
            label_by_id.setdefault(class_id, name)
    return label_by_id


def class_name(class_id: int, requested: dict[int, str] | None = None) -> str:
    """The name to report for a class id: the request's own word if it asked by alias."""
    if requested and class_id in requested:
        return requested[class_id]
    if class_id in STEP_CLASSES:
        return STEP_CLASSES[class_id]
    return COCO_CLASSES[class_id]
