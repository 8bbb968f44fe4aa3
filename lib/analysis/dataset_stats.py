"""Per-image and per-face statistics of an annotation table, for the EDA notebook."""

from __future__ import annotations

import numpy as np
import pandas as pd

from lib.formats.images import image_size
from lib.formats.table import boxes_array, points_array
from lib.metrics import normalising_distance
from lib.schemes import Scheme


def image_sizes(table: pd.DataFrame) -> pd.DataFrame:
    """One row per distinct image: ``image``, ``width``, ``height`` (pixels, from the header)."""
    images = list(dict.fromkeys(table["image"]))
    sizes = np.array([image_size(path) for path in images]).reshape(-1, 2)
    return pd.DataFrame({"image": images, "width": sizes[:, 0], "height": sizes[:, 1]})


def face_sizes(table: pd.DataFrame, scheme: Scheme) -> pd.DataFrame:
    """One row per face: box ``box_width``, ``box_height`` and the scheme's default normalising
    distance ``norm_distance`` (all in pixels)."""
    boxes = boxes_array(table)
    return pd.DataFrame(
        {
            "box_width": boxes[:, 2] - boxes[:, 0],
            "box_height": boxes[:, 3] - boxes[:, 1],
            "norm_distance": normalising_distance(points_array(table), scheme),
        }
    )
