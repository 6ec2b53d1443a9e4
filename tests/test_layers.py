"""The house's layering, read from the code's own imports (ast: nothing is imported but in the
last test). From the top down::

    latentline (the public face)  >  monitoring  >  streams.cli  >  streams.lab
        >  streams.worker | streams.station  >  streams.client
        >  streams.settings  >  models.training | models.evaluation  >  the rest of models  >  schemas

- the installed distribution has one import root, ``latentline``: the rooms below are its
  subpackages (``latentline.models``, ...), every one of them named in pyproject.toml, and the
  code imports them by that root; here each module is named by its room alone (``models.latents``
  for ``latentline.models.latents``);
- the root's ``__init__`` (the public API) loads its names on first use, never at import;
- no module imports from a layer above its own, and models.training and models.evaluation, side
  by side, import nothing from each other (imports at any depth: a lazy import is still one); so
  the worker never imports the lab tools or the command, and the lab never imports the command;
- the worker and the review station, side by side, import nothing from each other, and the lab
  tools never import the station (only the command starts it);
- monitoring/ never imports models/, and of streams/ only streams.settings (the alert thresholds);
- models/ and schemas/ import torch only in the modules that compute with it, and matplotlib only
  in models/evaluation/plots/;
- no package ``__init__`` under models/ or streams/ imports anything, and no import circle exists
  inside models/, schemas/, streams/ or monitoring/;
- importing the light modules (settings, rules, bundle, registries, detectors, the command's
  parser, the review station) loads neither torch nor matplotlib;
- the camera-side client (streams.client), which camera software embeds, imports nothing of the
  project but schemas/ (and the settings' type, for an annotation), and importing it loads none of
  torch, Faust, aiokafka, models/, the settings or the worker.
"""

import ast
import os
import subprocess
import sys
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]
ROOT = "latentline"  # the import root the rooms are installed under
ROOMS = ("schemas", "models", "streams")
PACKAGES = (*ROOMS, "monitoring", ROOT)
# Longest prefix wins.
LAYERS = {
    ROOT: 10,  # the public API: names from every room, loaded on first use
    "monitoring": 9,
    "streams.cli": 8,  # the latentline command: drives the worker, the lab tools and the model jobs
    "streams.lab": 7,  # demo, chaos, bench, comparison, embedded stack: never imported by the worker
    "streams.worker": 6,  # the worker runtime
    "streams.station": 6,  # the review station: operators' web application, beside the worker
    "streams.client": 5,  # the camera-side client: camera software and `latentline publish`
    "streams.settings": 4,  # read by every command, the worker and monitoring/
    "streams": 4,  # the package face, which imports nothing
    "models.training": 3,
    "models.evaluation": 3,
    "models": 2,
    "schemas": 1,
}
# The modules of models/ and schemas/ that compute with torch (at module level: the others may
# not import it, so reading a bundle or the settings does not load PyTorch).
TORCH_MODULES = {
    "models.encoding.compat",
    "models.encoding.device",
    "models.encoding.encoder",
    "models.scoring.coreset",
    "models.scoring.search",
    "models.scoring.patchcore",  # searches and reduces on the device (maps left there on a GPU)
    "models.scoring.maps",  # smoothing and image scores of a batch's maps, where they are
    "models.defect_types.windows",  # the type network's windows, cut from the trunk on the device
    "models.defect_types.views",
    "models.scoring.faiss_search",
    "models.scoring.autoencoder.networks",
    "models.scoring.autoencoder.ae",
    "models.scoring.autoencoder.vae",
}
PLOTS = "models.evaluation.plots"
LIGHT = ("streams.settings", "streams.cli.main", "monitoring.rules", "models", "models.bundle",
         "models.dataset", "models.scoring.registry", "models.defect_types.registry",
         "models.online.drift", "models.online.novelty", "models.metrology.measurement",
         "models.evaluation.reference_set", "streams.client", "streams.station.server")
# What camera software embeds: the contracts and its own Kafka and S3 clients, nothing else of ours.
CAMERA_SIDE = "streams.client"
CAMERA_SIDE_NEVER_LOADS = ("torch", "torchvision", "matplotlib", "faust", "aiokafka", "models",
                           "streams.settings", "streams.worker", "streams.lab", "streams.cli")


def _module_name(path: Path) -> str:
    parts = path.relative_to(REPO).with_suffix("").parts
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


MODULES = {_module_name(path): path
           for package in PACKAGES for path in sorted((REPO / package).rglob("*.py"))}


class _Imports(ast.NodeVisitor):
    """Every import of a module as (imported name, at module level?)."""

    def __init__(self, name: str, is_package: bool):
        self.package = name if is_package else name.rpartition(".")[0]
        self.found: list[tuple[str, bool]] = []
        self.depth = 0

    def visit_FunctionDef(self, node):
        self.depth += 1
        self.generic_visit(node)
        self.depth -= 1

    visit_AsyncFunctionDef = visit_FunctionDef

    def visit_Import(self, node):
        self.found += [(_room(alias.name), self.depth == 0) for alias in node.names]

    def visit_ImportFrom(self, node):
        base = _room(self._absolute(node))
        for alias in node.names:  # `from models.online import state`: the module models.online.state
            child = f"{base}.{alias.name}"
            self.found.append((child if child in MODULES else base, self.depth == 0))

    def _absolute(self, node) -> str:
        if not node.level:
            return node.module
        parent = self.package.rsplit(".", node.level - 1)[0] if node.level > 1 else self.package
        return f"{parent}.{node.module}" if node.module else parent


def _room(imported: str) -> str:
    """``latentline.models.latents`` as the module of the repository it is: ``models.latents``."""
    head, _, rest = imported.partition(".")
    return rest if head == ROOT and rest.split(".")[0] in ROOMS else imported


def imports(name: str) -> list[tuple[str, bool]]:
    path = MODULES[name]
    visitor = _Imports(name, path.name == "__init__.py")
    visitor.visit(ast.parse(path.read_text(), str(path)))
    return visitor.found


IMPORTS = {name: imports(name) for name in MODULES}


def _project(imported: str) -> str | None:
    """The project module an import loads (its longest known prefix), or None for a library."""
    while imported and imported not in MODULES:
        imported = imported.rpartition(".")[0]
    return imported or None


def _prefixed(name: str, prefix: str) -> bool:
    return name == prefix or name.startswith(prefix + ".")


def _layer(name: str) -> tuple[str, int]:
    prefix = max((p for p in LAYERS if _prefixed(name, p)), key=len)
    return prefix, LAYERS[prefix]


def _edges(root: str = "") -> list[tuple[str, str, bool]]:
    """(importer, imported project module, at module level) for the importers under ``root``."""
    return [(name, target, top) for name, found in IMPORTS.items() if _prefixed(name, root) or not root
            for imported, top in found if (target := _project(imported)) and target != name]


def test_the_code_imports_the_rooms_by_the_root_alone():
    bare = [f"{name} -> {imported}" for name in MODULES
            for imported in _raw_imports(name) if imported.split(".")[0] in ROOMS]
    assert bare == []


def _raw_imports(name: str) -> list[str]:
    tree = ast.parse(MODULES[name].read_text())
    plain = [alias.name for node in ast.walk(tree) if isinstance(node, ast.Import) for alias in node.names]
    return plain + [node.module for node in ast.walk(tree)
                    if isinstance(node, ast.ImportFrom) and node.module and not node.level]


def test_pyproject_names_every_package_under_the_root():
    import tomllib

    setuptools = tomllib.loads((REPO / "pyproject.toml").read_text())["tool"]["setuptools"]
    folders = {ROOT} | {f"{ROOT}.{name}" for name, path in MODULES.items()
                        if path.name == "__init__.py" and name.split(".")[0] in ROOMS}
    assert set(setuptools["packages"]) == folders
    assert setuptools["package-dir"] == {ROOT: ROOT} | {f"{ROOT}.{room}": room for room in ROOMS}


def test_the_public_api_loads_its_names_on_first_use():
    assert [imported for imported, top in IMPORTS[ROOT] if top and imported.split(".")[0] in ROOMS] == []
    code = ("import sys, latentline\n"
            "print(sorted(m for m in ('torch', 'latentline.models', 'latentline.streams')\n"
            "             if m in sys.modules))\n"
            "print(sorted(n for n in latentline.__all__ if not hasattr(latentline, n)))\n")
    result = subprocess.run([sys.executable, "-c", code], cwd=REPO.parent, capture_output=True, text=True)
    assert result.returncode == 0, result.stderr
    assert result.stdout.split("\n")[:2] == ["[]", "[]"]


def test_the_installed_package_has_no_generic_top_level_names():
    code = f"import importlib.util as u\nprint([n for n in {ROOMS!r} if u.find_spec(n)])"
    result = subprocess.run([sys.executable, "-c", code], cwd=REPO.parent, capture_output=True, text=True)
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == "[]"


def test_the_modules_are_found():
    expected = {"models", "models.latents", "models.scoring.registry", "streams.settings", "schemas.verdict",
                "streams.worker.app", "streams.lab.demo", "streams.cli.main"}
    assert expected <= set(MODULES)


def test_no_module_imports_a_higher_layer():
    upward = [f"{a} -> {b}" for a, b, _ in _edges() if _layer(b)[1] > _layer(a)[1]]
    assert upward == []


def test_training_and_evaluation_import_nothing_from_each_other():
    sideways = [f"{a} -> {b}" for a, b, _ in _edges("models")
                if _layer(a)[1] == _layer(b)[1] == LAYERS["models.training"] and _layer(a)[0] != _layer(b)[0]]
    assert sideways == []


def test_worker_station_and_lab_keep_apart():
    """The station shares the worker's layer but none of its code; the lab tools leave it alone."""
    rooms = ("streams.worker", "streams.station", "streams.lab")
    crossing = [f"{a} -> {b}" for a, b, _ in _edges("streams")
                if any(_prefixed(a, x) and _prefixed(b, y) for x in rooms for y in rooms if x != y)
                and not (_prefixed(a, "streams.lab") and _prefixed(b, "streams.worker"))]
    assert crossing == []


def test_monitoring_never_imports_models():
    assert [f"{a} -> {b}" for a, b, _ in _edges("monitoring") if _prefixed(b, "models")] == []


def test_monitoring_reads_only_the_settings_of_streams():
    found = {b for _, b, _ in _edges("monitoring") if _prefixed(b, "streams")}
    assert found <= {"streams.settings"}


@pytest.mark.parametrize("package", ["models", "schemas"])
def test_torch_only_where_it_computes(package):
    found = {name for name, found in IMPORTS.items() if _prefixed(name, package)
             for imported, top in found if top and imported.split(".")[0] in ("torch", "torchvision")}
    assert found <= TORCH_MODULES, f"import torch at module level: {sorted(found - TORCH_MODULES)}"


@pytest.mark.parametrize("package", ["models", "schemas"])
def test_matplotlib_only_in_the_plots(package):
    found = {name for name, found in IMPORTS.items() if _prefixed(name, package)
             for imported, _ in found if imported.split(".")[0] == "matplotlib"}
    assert {name for name in found if not _prefixed(name, PLOTS)} == set()


@pytest.mark.parametrize(("package", "rooms"), [("models", 6), ("streams", 3)])
def test_package_faces_import_nothing(package, rooms):
    faces = [name for name, path in MODULES.items()
             if _prefixed(name, package) and path.name == "__init__.py"]
    assert len(faces) > rooms
    assert {name: [i for i, _ in IMPORTS[name]] for name in faces if IMPORTS[name]} == {}


def _cycle(graph: dict[str, set[str]]) -> list[str] | None:
    """One import circle of ``graph`` as a path that returns to its start, or None."""
    state: dict[str, int] = {}  # 1: on the current path, 2: done

    def visit(node: str, path: list[str]) -> list[str] | None:
        state[node] = 1
        for nxt in sorted(graph.get(node, ())):
            if state.get(nxt) == 1:
                return path[path.index(nxt):] + [node, nxt] if nxt in path else [node, nxt]
            if nxt not in state and (found := visit(nxt, path + [node])):
                return found
        state[node] = 2
        return None

    for start in sorted(graph):
        if start not in state and (found := visit(start, [])):
            return found
    return None


def test_the_cycle_finder_finds_a_circle():
    assert _cycle({"a": {"b"}, "b": {"c"}, "c": {"a"}}) == ["a", "b", "c", "a"]
    assert _cycle({"a": {"b"}, "b": {"c"}, "c": set()}) is None


@pytest.mark.parametrize("package", ["models", "schemas", "streams", "monitoring"])
def test_no_import_circle_inside(package):
    graph: dict[str, set[str]] = {}
    for a, b, _ in _edges(package):
        if _prefixed(b, package):
            graph.setdefault(a, set()).add(b)
    assert _cycle(graph) is None, " -> ".join(_cycle(graph))


def test_light_modules_load_neither_torch_nor_matplotlib():
    code = ("import importlib, sys\n"
            f"for name in {LIGHT!r}:\n"
            f"    rooted = name.split('.')[0] in {ROOMS!r}\n"
            f"    importlib.import_module('{ROOT}.' + name if rooted else name)\n"
            "print(sorted(m for m in ('torch', 'torchvision', 'matplotlib') if m in sys.modules))\n")
    env = os.environ | {"PYTHONPATH": str(REPO)}
    result = subprocess.run([sys.executable, "-c", code], cwd=REPO, env=env, capture_output=True,
                            text=True)
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == "[]"


def test_the_camera_client_imports_only_the_contracts():
    found = {target for _, target, _ in _edges(CAMERA_SIDE)}
    assert {name for name in found if not _prefixed(name, "schemas")} <= {"streams.settings"}


def test_the_camera_client_loads_neither_the_worker_nor_the_models():
    never = tuple(f"{ROOT}.{name}" if name.split(".")[0] in ROOMS else name
                  for name in CAMERA_SIDE_NEVER_LOADS)
    code = (f"import sys, {ROOT}.{CAMERA_SIDE}\n"
            f"print(sorted(m for m in {never!r} if m in sys.modules))\n")
    env = os.environ | {"PYTHONPATH": str(REPO)}
    result = subprocess.run([sys.executable, "-c", code], cwd=REPO, env=env, capture_output=True,
                            text=True)
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == "[]"
