"""Per-image and per-face statistics of an annotation table, for the EDA notebook."""

from __future__ import annotations

import numpy as np
import pandas as pd

from lib.analysis.shapes import MeanShapeBaseline
from lib.formats.images import image_size
from lib.formats.table import boxes_array, points_array
from lib.headline import percent
from lib.metrics import normalising_distance, summarise
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


def eda_headline(train: pd.DataFrame, tests: dict[str, pd.DataFrame], scheme: Scheme, pca_explained, findings: dict) -> tuple[str, dict]:
    """The EDA step's headline (:mod:`lib.headline`): faces per sub-folder, the shape PCA's
    explained shares, the label checks' findings and, where the tree has labelled test faces,
    the mean-shape baseline (the training mean shape placed in each test face's box) on the
    first test set: the floor any network must beat."""
    summary = {
        "faces": len(train),
        "subsets": train["subset"].value_counts().sort_index().to_dict(),
        "pca_explained": [round(float(r), 4) for r in pca_explained],
        "label_findings": findings,
    }
    line = f"{len(train)} training faces, label findings: {findings or 'none'}"
    if tests:
        test = next(iter(tests.values()))
        baseline = MeanShapeBaseline().fit(points_array(train), boxes_array(train))
        report = summarise(baseline.predict(boxes_array(test)), points_array(test), scheme)
        summary["mean_shape_baseline"] = {k: v for k, v in report.items() if k != "per_part"}
        line += (
            f"; mean-shape baseline on {report['faces']} test faces: NME {percent(report['nme'])} ({report['normaliser']}), FR@0.10 {percent(report['fr'], 1)}"
        )
    return line, {"eda": summary}
