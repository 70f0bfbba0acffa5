"""The package's dependencies point down: data knows nothing of models, and no module imports
itself back through another (read from the source, not by importing it)."""

import ast
from pathlib import Path

import stockcast

PACKAGE = Path(stockcast.__file__).parent


def all_imports() -> dict[str, set[str]]:
    """Every stockcast module and every module it imports (anywhere in the file)."""
    out = {}
    for path in PACKAGE.rglob("*.py"):
        name = ".".join(("stockcast", *path.relative_to(PACKAGE).with_suffix("").parts))
        name = name.removesuffix(".__init__")
        found = set()
        for node in ast.walk(ast.parse(path.read_text())):
            if isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
                found.add(node.module)
                found.update(f"{node.module}.{a.name}" for a in node.names)
            elif isinstance(node, ast.Import):
                found.update(a.name for a in node.names)
        out[name] = found
    return out


def module_imports() -> dict[str, set[str]]:
    """Every stockcast module and the stockcast modules it imports."""
    out = all_imports()
    return {m: {i for i in deps if i in out and i != m} for m, deps in out.items()}


# The package's layers, lowest first: a module may import its own layer and those below, the
# top-level modules (config, errors, ...) that belong to no layer, and nothing above.
LAYERS = ("data", "modeling", "evaluation", "registry", "serving")
ABOVE_ALL = ("stockcast.pipeline", "stockcast.ticker_outcome", "stockcast.cli")
# Prefect and the flows stay above the package: only these may reach them (inside functions).
MAY_IMPORT_PREFECT = {"stockcast.cli": "runs the flows",
                      "stockcast.server_guard": "stops Prefect's temporary server"}


def _layer(module: str) -> str | None:
    parts = module.split(".")
    return parts[1] if len(parts) > 2 and parts[1] in LAYERS else None


def forbidden_imports(graph: dict[str, set[str]]) -> list[str]:
    """The imports that break the contracts above, as ``a -> b`` lines."""
    bad = []
    for module, deps in sorted(graph.items()):
        layer = _layer(module)
        for dep in sorted(deps):
            if dep.split(".")[0] in ("prefect", "flows"):
                broken = module not in MAY_IMPORT_PREFECT
            elif dep.startswith(ABOVE_ALL):
                broken = module not in ABOVE_ALL
            else:
                broken = bool(layer and _layer(dep)
                              and LAYERS.index(_layer(dep)) > LAYERS.index(layer))
            if broken:
                bad.append(f"{module} -> {dep}")
    return bad


def test_imports_keep_the_contracts():
    assert forbidden_imports(all_imports()) == []


def test_the_contracts_catch_an_import_that_points_up():
    planted = {"stockcast.data.cache": {"stockcast.modeling.recipe", "stockcast.config"},
               "stockcast.modeling.trainer": {"prefect", "stockcast.modeling.model"},
               "stockcast.evaluation.scorecard": {"stockcast.pipeline"},
               "stockcast.registry.versions": {"stockcast.serving.rest"},
               "stockcast.serving.rest": {"stockcast.registry.store", "stockcast.data.files"},
               "stockcast.cli": {"flows.train", "stockcast.pipeline"}}
    assert forbidden_imports(planted) == [
        "stockcast.data.cache -> stockcast.modeling.recipe",
        "stockcast.evaluation.scorecard -> stockcast.pipeline",
        "stockcast.modeling.trainer -> prefect",
        "stockcast.registry.versions -> stockcast.serving.rest"]


def test_there_are_no_import_circles():
    graph = module_imports()
    state: dict[str, int] = {}

    def visit(node, path):
        state[node] = 1
        for dep in sorted(graph[node]):
            if dep.startswith(node + "."):  # a package importing its own submodule
                continue
            if state.get(dep) == 1:
                raise AssertionError("import circle: " + " -> ".join([*path, dep]))
            if dep not in state:
                visit(dep, [*path, dep])
        state[node] = 2

    for module in sorted(graph):
        if module not in state:
            visit(module, [module])


def test_modules_are_read_in_one_sitting():
    root = PACKAGE.parents[1]
    for path in [*PACKAGE.rglob("*.py"), *(root / "flows").glob("*.py"),
                 *(root / "bench").glob("*.py")]:
        lines = len(path.read_text().splitlines())
        assert lines <= 320, f"{path.relative_to(root)} has {lines} lines"


def test_readme_and_docs_links_point_at_files_that_exist():
    import re

    root = PACKAGE.parents[1]
    pages = [root / "README.md", *sorted((root / "docs").glob("*.md"))]
    assert len(pages) >= 8
    for page in pages:
        for target in re.findall(r"\]\(([^)#]+)\)", page.read_text()):
            if "://" in target:
                continue
            assert (page.parent / target).exists(), f"{page.name} links to missing {target}"


def test_the_readme_stays_a_first_ten_minutes_page():
    root = PACKAGE.parents[1]
    text = (root / "README.md").read_text()
    assert len(text.splitlines()) <= 220
    sections = [line for line in text.splitlines() if line.startswith("## ")]
    assert sections[0] == "## The two commands"
    assert text[:text.index(sections[0])].count("\n") <= 12  # after a short introduction only
    commands = text[text.index(sections[0]):text.index(sections[1])]
    assert "make run-flow" in commands and "make test" in commands


def test_every_make_target_is_in_the_readme_and_no_other():
    import re

    root = PACKAGE.parents[1]
    targets = set(re.findall(r"^([a-zA-Z_-]+):.*?## ", (root / "Makefile").read_text(), re.M))
    readme = (root / "README.md").read_text()
    table = readme[readme.index("## Make targets"):readme.index("## The command line")]
    listed = set(re.findall(r"`make ([a-z-]+)`", table))
    assert targets == listed


def test_functions_are_short():
    root = PACKAGE.parents[1]
    for path in [*PACKAGE.rglob("*.py"), *(root / "flows").glob("*.py"),
                 *(root / "bench").glob("*.py")]:
        for node in ast.walk(ast.parse(path.read_text())):
            if isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef):
                lines = node.end_lineno - node.lineno + 1
                assert lines <= 50, f"{path.name}:{node.lineno} {node.name} has {lines} lines"
