"""The layers of ``lib``: every import runs down (or within a floor), never up; the package's
standalone runtime and the file runner beside it import nothing of ``lib`` at all (the runtime
is copied verbatim into the final package). docs/architecture.md draws the same floors."""

from __future__ import annotations

import ast
import json
from pathlib import Path

from lib.paths import PROJECT_ROOT

# Floors from the ground up; a module belongs to the most specific prefix listed.
FLOORS = (
    ("lib.deploy.run_model", "lib.deploy.run_file", "lib.paths", "lib.io", "lib.progress", "lib.timing", "lib.cli", "lib.headline"),
    ("lib.schemes", "lib.formats", "lib.metrics", "lib.deploy.detector_files"),
    ("lib.data", "lib.models", "lib.losses", "lib.analysis", "lib.viz", "lib.settings"),
    ("lib.training", "lib.inference", "lib.export"),
    ("lib.deploy", "lib.submission", "lib.bench", "lib.video"),
    ("lib.pipeline",),
)
STANDALONE = ("run_model.py", "run_file.py")  # lib/deploy's scripts that run without the project


def floor_of(module: str) -> int:
    """The floor of a ``lib`` module: that of the longest prefix in :data:`FLOORS`."""
    matches = [(len(prefix), floor) for floor, prefixes in enumerate(FLOORS) for prefix in prefixes if module == prefix or module.startswith(prefix + ".")]
    if not matches:
        raise AssertionError(f"{module} is on no floor: add it to FLOORS (and docs/architecture.md)")
    return max(matches)[1]


def _is_module(name: str) -> bool:
    where = PROJECT_ROOT.joinpath(*name.split("."))
    return where.with_suffix(".py").is_file() or (where / "__init__.py").is_file()


def notebook_code(path: Path) -> str:
    """A notebook's code cells, joined."""
    return "\n".join("".join(cell["source"]) for cell in json.loads(path.read_text())["cells"] if cell["cell_type"] == "code")


def lib_imports(path: Path) -> set[str]:
    """The ``lib`` modules a source file (or a notebook's code) imports (``from lib.x import y``
    counts as ``lib.x.y`` where ``y`` is a module, else as ``lib.x``)."""
    found = set()
    for node in ast.walk(ast.parse(notebook_code(path) if path.suffix == ".ipynb" else path.read_text())):
        if isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            found.update(f"{node.module}.{alias.name}" if _is_module(f"{node.module}.{alias.name}") else node.module for alias in node.names)
        elif isinstance(node, ast.Import):
            found.update(alias.name for alias in node.names)
    return {name for name in found if name == "lib" or name.startswith("lib.")}


def module_name(path: Path) -> str:
    parts = path.relative_to(PROJECT_ROOT).with_suffix("").parts
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def test_every_import_in_lib_runs_down_the_floors():
    upward = []
    for path in sorted((PROJECT_ROOT / "lib").rglob("*.py")):
        module = module_name(path)
        for imported in lib_imports(path):
            if imported == "lib":
                continue
            if floor_of(imported) > floor_of(module):
                upward.append(f"{module} (floor {floor_of(module)}) imports {imported} (floor {floor_of(imported)})")
    assert not upward, "imports up the floors:\n" + "\n".join(upward)


def test_the_packages_runtime_stands_alone():
    for name in STANDALONE:
        assert lib_imports(PROJECT_ROOT / "lib" / "deploy" / name) == set(), name


def test_the_floor_rule_sees_an_upward_import(tmp_path):
    """The checker itself: a module importing a higher floor is caught; the finer prefix wins."""
    assert floor_of("lib.deploy.run_model") == 0
    assert floor_of("lib.submission.package") == 4
    assert floor_of("lib.data.synthetic.generate") == 2
    source = tmp_path / "lib" / "formats" / "bad.py"
    source.parent.mkdir(parents=True)
    source.write_text("from lib.training.engine import train\nimport lib.pipeline.runner\n")
    assert lib_imports(source) == {"lib.training.engine", "lib.pipeline.runner"}
    assert all(floor_of(name) > floor_of("lib.formats.bad") for name in lib_imports(source))


# What a landmarker is made of: notebooks load one (lib.inference.landmarker) and call it.
RUNTIME_PARTS = ("lib.deploy.run_model", "lib.inference.torch_model")
PIPELINE_INTERNALS = ("calibration", "face_passes", "crop_outputs", "face_outputs")  # and a landmarker's .model.<anything>


def test_notebooks_reach_inference_only_through_the_landmarker():
    reaching = []
    for path in sorted((PROJECT_ROOT / "notebooks").glob("*.ipynb")):
        reaching += [f"{path.name} imports {name}" for name in lib_imports(path) if name.startswith(RUNTIME_PARTS)]
        tree = ast.parse(notebook_code(path))
        attributes = [node for node in ast.walk(tree) if isinstance(node, ast.Attribute)]
        reaching += [f"{path.name} reads .{node.attr}" for node in attributes if node.attr in PIPELINE_INTERNALS]
        reaching += [f"{path.name} reads .model.{node.attr}" for node in attributes if isinstance(node.value, ast.Attribute) and node.value.attr == "model"]
    assert not reaching, "notebooks past the three-call API:\n" + "\n".join(reaching)
    assert "lib.inference.landmarker" in lib_imports(PROJECT_ROOT / "notebooks" / "07_video.ipynb")


def test_pipeline_yaml_has_one_reader():
    # lib.settings parses pipeline.yaml; the only other YAML readers are the schemes' own files and
    # the --set option's value typing.
    readers = {module_name(path) for path in (PROJECT_ROOT / "lib").rglob("*.py") if "yaml" in lib_imports_any(path)}
    assert readers == {"lib.settings", "lib.schemes", "lib.cli"}


def lib_imports_any(path: Path) -> set[str]:
    """Every top-level module a source file imports."""
    found = set()
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            found.add(node.module.split(".")[0])
        elif isinstance(node, ast.Import):
            found.update(alias.name.split(".")[0] for alias in node.names)
    return found
