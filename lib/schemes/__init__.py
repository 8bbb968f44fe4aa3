"""Landmark schemes as data: parts, flip permutation, NME normalisers, mappings.

A scheme is loaded from ``<name>.yaml`` beside this file; nothing else in the project
hard-codes a number of landmarks. Indices are 0-based; "right"/"left" are the subject's.
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import cache
from pathlib import Path

import numpy as np
import yaml

SCHEME_DIR = Path(__file__).parent


@dataclass(frozen=True)
class Part:
    """A facial part: landmarks ``start:stop`` joined in order; ``closed`` joins last to first."""

    name: str
    start: int
    stop: int
    closed: bool

    @property
    def indices(self) -> np.ndarray:
        return np.arange(self.start, self.stop)


@dataclass(frozen=True)
class Normaliser:
    """How the NME denominator is measured: ``centroids`` (distance between the means of two
    index groups) or ``box`` (square root of the ground-truth points' bounding-box area)."""

    name: str
    kind: str
    groups: tuple[tuple[int, ...], ...] = ()


@dataclass(frozen=True)
class Scheme:
    """One landmark markup. ``flip_permutation[k]`` is the landmark that takes k's place after a
    horizontal flip; ``from_ibug68`` (or None) gives, for each point, its iBUG-68 index."""

    name: str
    description: str
    num_points: int
    parts: tuple[Part, ...]
    flip_permutation: np.ndarray
    normalisers: dict[str, Normaliser]
    default_normaliser: str
    from_ibug68: np.ndarray | None

    @property
    def num_parts(self) -> int:
        return len(self.parts)

    def points_from_ibug68(self, points: np.ndarray) -> np.ndarray:
        """(..., 68, 2) iBUG-68 points -> (..., N, 2) this scheme's (the ``ibug68`` scheme's are
        the same); a scheme without an iBUG-68 mapping is an error naming it."""
        if self.name == "ibug68":
            return points
        if self.from_ibug68 is None:
            raise ValueError(f"scheme {self.name} has no iBUG-68 mapping to read 68-point labels into")
        return points[..., self.from_ibug68, :]

    @property
    def part_of_point(self) -> np.ndarray:
        """(N,) index of the part each landmark belongs to."""
        owner = np.full(self.num_points, -1)
        for part_index, part in enumerate(self.parts):
            owner[part.start : part.stop] = part_index
        return owner

    def part(self, name: str) -> Part:
        for part in self.parts:
            if part.name == name:
                return part
        raise KeyError(f"scheme {self.name} has no part {name!r}; parts: {[p.name for p in self.parts]}")

    def normaliser(self, name: str | None = None) -> Normaliser:
        name = name or self.default_normaliser
        if name not in self.normalisers:
            raise KeyError(f"scheme {self.name} has no normaliser {name!r}; options: {sorted(self.normalisers)}")
        return self.normalisers[name]


def _flip_permutation(num_points: int, pairs: list[list[int]], source: Path) -> np.ndarray:
    permutation = np.arange(num_points)
    for a, b in pairs:
        if permutation[a] != a or permutation[b] != b:
            raise ValueError(f"{source}: landmark in flip pair {[a, b]} already paired")
        permutation[a], permutation[b] = b, a
    return permutation


def _check_parts(parts: tuple[Part, ...], num_points: int, source: Path) -> None:
    covered = np.zeros(num_points, dtype=int)
    for part in parts:
        covered[part.start : part.stop] += 1
    if not np.all(covered == 1):
        raise ValueError(f"{source}: parts must cover each of the {num_points} landmarks exactly once")


@cache
def load_scheme(name: str) -> Scheme:
    """Load a scheme by name (``ivslab51``, ``ibug68``, ``wflw98``)."""
    source = SCHEME_DIR / f"{name}.yaml"
    if not source.is_file():
        raise KeyError(f"unknown landmark scheme {name!r}; available: {available_schemes()}")
    spec = yaml.safe_load(source.read_text())
    num_points = int(spec["num_points"])
    parts = tuple(Part(p["name"], int(p["start"]), int(p["stop"]), bool(p["closed"])) for p in spec["parts"])
    _check_parts(parts, num_points, source)
    normalisers = {key: Normaliser(key, value["kind"], tuple(tuple(group) for group in value.get("groups", ()))) for key, value in spec["normalisers"].items()}
    mapping = spec.get("from_ibug68")
    from_ibug68 = None if mapping is None else np.arange(mapping["start"], mapping["stop"])
    if from_ibug68 is not None and len(from_ibug68) != num_points:
        raise ValueError(f"{source}: from_ibug68 maps {len(from_ibug68)} points, expected {num_points}")
    return Scheme(
        name=spec["name"],
        description=spec["description"],
        num_points=num_points,
        parts=parts,
        flip_permutation=_flip_permutation(num_points, spec["flip_pairs"], source),
        normalisers=normalisers,
        default_normaliser=spec["default_normaliser"],
        from_ibug68=from_ibug68,
    )


def available_schemes() -> list[str]:
    return sorted(path.stem for path in SCHEME_DIR.glob("*.yaml"))


@cache
def correspondence(name: str) -> tuple[np.ndarray, np.ndarray]:
    """A point correspondence between two markups, kept as data in ``correspondences/<name>.yaml``:
    ``(vertices, weights)``, both (T, K): target point t is ``sum_k weights[t, k] *
    source[vertices[t, k]]`` (each target point the mean of its one or more source points)."""
    source = SCHEME_DIR / "correspondences" / f"{name}.yaml"
    if not source.is_file():
        raise KeyError(f"unknown correspondence {name!r}; available: {sorted(p.stem for p in (SCHEME_DIR / 'correspondences').glob('*.yaml'))}")
    spec = yaml.safe_load(source.read_text())
    groups = spec["vertices"]
    width = max(len(group) for group in groups)
    vertices = np.array([group + group[-1:] * (width - len(group)) for group in groups])
    weights = np.array([[1.0 / len(group)] * len(group) + [0.0] * (width - len(group)) for group in groups])
    if vertices.min() < 0 or vertices.max() >= spec["source_points"] or len(groups) != load_scheme(spec["target"]).num_points:
        raise ValueError(f"{source}: vertices must index {spec['source_points']} source points, one group per {spec['target']} point")
    return vertices, weights
