"""What every command line here shares: the ``--set KEY=VALUE`` override option and its typing."""

from __future__ import annotations

import argparse

import yaml


def add_set_option(parser: argparse.ArgumentParser, what: str) -> None:
    """The one override option of every command line here: ``--set KEY=VALUE [KEY=VALUE ...]``,
    repeatable, values typed as YAML (:func:`parse_overrides`)."""
    parser.add_argument("--set", nargs="+", action="extend", default=[], metavar="KEY=VALUE", help=f"override {what} (YAML-typed values)")


def parse_overrides(items: list[str]) -> dict:
    """``["epochs=3", "lr=1e-3"]`` -> ``{"epochs": 3, "lr": 0.001}`` (values typed as YAML)."""
    overrides = {}
    for item in items:
        key, sep, value = item.partition("=")
        if not sep or not key:
            raise ValueError(f"override {item!r} is not key=value")
        overrides[key.strip()] = _typed(value)
    return overrides


def _typed(text: str):
    """YAML scalar typing, plus floats YAML 1.1 reads as strings (``1e-3``)."""
    value = yaml.safe_load(text)
    if isinstance(value, str):
        try:
            return float(value)
        except ValueError:
            return value
    return value
