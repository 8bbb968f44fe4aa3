"""Shared fixtures: a small synthetic dataset generated once per test session."""

from __future__ import annotations

from pathlib import Path

import pytest

from lib.data.synthetic.generate import generate

SMALL_TRAIN, SMALL_TEST = 24, 6


@pytest.fixture(scope="session")
def synthetic_root(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return generate(tmp_path_factory.mktemp("synthetic") / "dataset", SMALL_TRAIN, SMALL_TEST, seed=7)
