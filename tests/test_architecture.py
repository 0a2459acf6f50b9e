"""The rules that keep the modules apart (docs/architecture.md), read off
the import statements of the project's top-level modules."""

import ast
from graphlib import CycleError, TopologicalSorter
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
MODULES = {path.stem: path for path in ROOT.glob("*.py")}


def imported_names(path: Path) -> set[str]:
    """The top-level names of every module `path` imports, anywhere in it."""
    names = set()
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.Import):
            names |= {alias.name.split(".")[0] for alias in node.names}
        elif isinstance(node, ast.ImportFrom) and node.level == 0:
            names.add(node.module.split(".")[0])
    return names


def project_imports() -> dict[str, set[str]]:
    """Which of the project's modules each of them imports."""
    return {
        name: imported_names(path) & MODULES.keys() for name, path in MODULES.items()
    }


def test_the_layout_is_the_one_the_docs_describe():
    assert {"app", "admin", "payments", "models", "khalti", "sandbox"} <= MODULES.keys()


def cycle_in(graph: dict[str, set[str]]) -> list[str] | None:
    """An import cycle in `graph`, as the modules along it, or None."""
    try:
        TopologicalSorter(graph).prepare()
    except CycleError as error:
        return error.args[1]
    return None


def test_no_two_modules_import_each_other_directly_or_through_others():
    assert cycle_in(project_imports()) is None


def test_the_cycle_check_sees_a_cycle_through_a_third_module():
    # The check above must be able to fail: models importing admin would
    # close admin -> payments -> models -> admin.
    assert cycle_in(project_imports() | {"models": {"admin"}}) is not None


def test_the_khalti_client_knows_no_flask_and_no_database():
    assert (
        imported_names(MODULES["khalti"]) & {"flask", "sqlalchemy", "flask_sqlalchemy"}
        == set()
    )
    assert project_imports()["khalti"] == set()


def test_the_models_know_no_http():
    assert imported_names(MODULES["models"]) & {"requests", "khalti"} == set()


def test_the_sandbox_shares_nothing_with_the_shop():
    assert project_imports()["sandbox"] == set()
    assert "sandbox" not in set().union(*project_imports().values())


def test_only_create_app_wires_the_back_office_in():
    importers = {name for name, deps in project_imports().items() if "admin" in deps}
    assert importers == {"app"}
