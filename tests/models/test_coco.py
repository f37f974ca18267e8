"""COCO-80 names, the documented aliases, and the name reported back for each id."""

from __future__ import annotations

import pytest

from models.coco import CLASS_ALIASES, COCO_CLASSES, UnknownClassError, class_ids_for, class_name, resolve_classes


def test_coco_vocabulary() -> None:
    assert len(COCO_CLASSES) == 80
    assert len(set(COCO_CLASSES)) == 80
    # Spot checks of the 0-based COCO-80 order the models use.
    assert (COCO_CLASSES[0], COCO_CLASSES[2], COCO_CLASSES[3], COCO_CLASSES[5], COCO_CLASSES[7]) == (
        "person",
        "car",
        "motorcycle",
        "bus",
        "truck",
    )
    assert COCO_CLASSES[67] == "cell phone"
    assert COCO_CLASSES[79] == "toothbrush"


def test_every_alias_resolves_and_is_reachable() -> None:
    for alias, targets in CLASS_ALIASES.items():
        assert set(targets) <= set(COCO_CLASSES), alias
        # An alias key must already be in normalised form (lower case, single spaces) and must not
        # shadow a COCO name, or the lookup could never reach it.
        assert alias == " ".join(alias.lower().split()), alias
        assert alias not in COCO_CLASSES, alias
        assert class_ids_for(alias) == tuple(COCO_CLASSES.index(t) for t in targets)


@pytest.mark.parametrize(
    ("name", "ids"),
    [
        ("person", (0,)),
        ("pedestrian", (0,)),
        # car 2, truck 7, bus 5, motorcycle 3, in the alias's order.
        ("vehicle", (2, 7, 5, 3)),
        ("Vehicle", (2, 7, 5, 3)),
        ("PEDESTRIAN", (0,)),
        ("traffic light", (9,)),
        ("Traffic_Light", (9,)),
        ("  traffic   light ", (9,)),
        ("mobile_phone", (67,)),
        ("TV", (62,)),
    ],
)
def test_class_ids_for(name: str, ids: tuple[int, ...]) -> None:
    assert class_ids_for(name) == ids


@pytest.mark.parametrize("name", ["unicorn", "", "cars", "traffic-light"])
def test_unknown_name_raises(name: str) -> None:
    with pytest.raises(UnknownClassError) as info:
        class_ids_for(name)
    assert isinstance(info.value, ValueError)
    assert info.value.name == name
    assert repr(name) in str(info.value)


def test_resolve_classes_none_means_every_class() -> None:
    assert resolve_classes(None) is None


def test_resolve_classes_keeps_the_requested_word() -> None:
    assert resolve_classes(["Pedestrian"]) == {0: "Pedestrian"}
    assert resolve_classes(["vehicle"]) == {2: "vehicle", 7: "vehicle", 5: "vehicle", 3: "vehicle"}


def test_resolve_classes_first_name_wins_on_overlap() -> None:
    assert resolve_classes(["car", "vehicle"]) == {2: "car", 7: "vehicle", 5: "vehicle", 3: "vehicle"}
    assert resolve_classes(["vehicle", "car"]) == {2: "vehicle", 7: "vehicle", 5: "vehicle", 3: "vehicle"}
    assert resolve_classes(iter(["person", "people", "dog"])) == {0: "person", 16: "dog"}


def test_resolve_classes_rejects_an_unknown_name() -> None:
    with pytest.raises(UnknownClassError, match="unicorn"):
        resolve_classes(["person", "unicorn"])


def test_class_name() -> None:
    requested = resolve_classes(["pedestrian", "lorry"])
    assert requested == {0: "pedestrian", 7: "lorry"}
    assert class_name(0, requested) == "pedestrian"
    assert class_name(7, requested) == "lorry"
    assert class_name(2, requested) == "car"  # not requested by alias: the COCO name
    assert class_name(2) == "car"
    assert class_name(0, None) == "person"
    assert class_name(0, {}) == "person"
