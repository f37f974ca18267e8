"""Boxes land on exactly the ROI's pixels in the track's colour; trails and labels are drawn; odd
boxes (1 px, at the frame's edge) do not fail."""

from __future__ import annotations

import numpy as np

from kernels.draw import LINE, colour_of, draw_targets


def test_a_box_is_drawn_inside_its_roi_in_its_tracks_colour() -> None:
    image = np.zeros((120, 160, 3), np.uint8)
    drawn = draw_targets(image, [(40, 50, 30, 40)], [3], ["person"])
    colour = np.array(colour_of(3))
    assert (drawn[50 : 50 + LINE, 45:65] == colour).all(), "top edge, inside the ROI"
    assert (drawn[89, 45:65] == colour).all(), "bottom edge: the ROI's last row"
    assert (drawn[60:80, 40] == colour).all() and (drawn[60:80, 69] == colour).all()
    assert not drawn[60:80, 39].any() and not drawn[60:80, 70].any(), "nothing outside the ROI's sides"
    assert not drawn[60:80, 45:65].any(), "the inside is left alone"
    assert drawn[30:50, 40:100].any(), "the label tab sits above the box"
    assert not image.any(), "the input is not modified"


def test_the_same_id_is_the_same_colour_and_others_differ() -> None:
    assert colour_of(7) == colour_of(7) and colour_of(1) != colour_of(2) and colour_of(-1) == (200, 200, 200)


def test_a_trail_is_a_line_through_its_points() -> None:
    image = np.zeros((100, 100, 3), np.uint8)
    drawn = draw_targets(image, [], [], [], {1: [(10, 90), (50, 90), (90, 90)]})
    assert (drawn[90, 15:85] > 0).any(axis=1).all()


def test_degenerate_and_edge_boxes_are_drawn_without_error() -> None:
    image = np.zeros((50, 50, 3), np.uint8)
    drawn = draw_targets(image, [(0, 0, 1, 1), (49, 49, 1, 1), (0, 0, 50, 50)], [1, 2, 3], ["a", "b", "c"])
    assert drawn.shape == image.shape and drawn.any()
