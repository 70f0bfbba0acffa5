"""The package's dependencies point down: data knows nothing of models, and no module imports
itself back through another (read from the source, not by importing it)."""

import ast
from pathlib import Path

import stockcast

PACKAGE = Path(stockcast.__file__).parent


def module_imports() -> dict[str, set[str]]:
    """Every stockcast module and the stockcast modules it imports (anywhere in the file)."""
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
    return {m: {i for i in deps if i in out and i != m} for m, deps in out.items()}


def test_data_does_not_depend_on_modeling_evaluation_or_registry():
    for module, deps in module_imports().items():
        if module.startswith("stockcast.data"):
            bad = {d for d in deps if d.startswith(("stockcast.modeling", "stockcast.evaluation",
                                                    "stockcast.registry", "stockcast.serving"))}
            assert not bad, f"{module} imports {sorted(bad)}"


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
    assert text.index("make run-flow") < text.index("## Make targets")  # the two commands first


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
