"""docs/tutorial.md, checked so that it cannot rot; and docs/khalti-api.md's samples.

The tutorial builds examples/minimal.py from an empty folder. Its blocks are
of the kinds tests/test_readme.py describes (run blocks with their output,
excerpts), plus two:

- a piece: `<!-- append: FILE -->` between its caption and the fence. The
  reader adds it to the end of FILE in their folder, two blank lines after
  the piece before. The walk below does the same when it reaches the
  piece, so every run block meets the file as the reader has it at that
  step; and the pieces of minimal.py must add up to examples/minimal.py.
- the install block, `<!-- install -->`: the reader's virtual environment
  and `pip install` line. It is not run, which would download packages on
  every test run; instead its pins must be requirements.txt's and cover
  every package the example imports, and the reader's folder gets this
  project's environment, which has them.

The reader's app is in ~/myshop, where every command runs, and the project
in ~/khalti-demo-shop, as the tutorial says.
"""

import json
import os
import re
import subprocess
import sys
from importlib import metadata
from pathlib import Path

import pytest
from test_architecture import imported_names
from test_readme import (
    CODE_LANGUAGES,
    ROOT,
    Block,
    Reader,
    block_id,
    need_a_readers_tools,
    readme_blocks,
    run_and_check,
)

TUTORIAL = ROOT / "docs" / "tutorial.md"
API_REFERENCE = ROOT / "docs" / "khalti-api.md"
EXAMPLE = ROOT / "examples" / "minimal.py"

BLOCKS = readme_blocks(TUTORIAL)
CODE = [block for block in BLOCKS if block.language in CODE_LANGUAGES]
PIECES = [block for block in CODE if "append" in block.markers]
INSTALL = [block for block in CODE if "install" in block.markers]
# The reader's walk: pieces and run blocks, in the tutorial's order.
WALK = [block for block in CODE if block in PIECES or block.runs]


def test_tutorial_every_code_block_is_checked():
    unchecked = [
        f"line {block.line}: {block.caption!r}"
        for block in CODE
        if not (block.runs or block.excerpt_of or block in PIECES + INSTALL)
    ]
    assert not unchecked, (
        "Mark these tutorial blocks <!-- run -->, <!-- append: FILE --> or"
        f" caption them with the file they come from: {unchecked}"
    )
    assert len(INSTALL) == 1


def test_tutorial_pieces_add_up_to_the_example():
    pieces = [
        block.text for block in PIECES if block.markers["append"] == ["minimal.py"]
    ]
    assembled = "\n\n".join(pieces)
    assert assembled == EXAMPLE.read_text(), (
        "The tutorial's pieces of minimal.py, put together, are not"
        " examples/minimal.py: change one to match the other."
    )


def pins(lines: list[str]) -> dict[str, str]:
    """{normalized name: version} of the `name==version` requirements in lines."""
    found = {}
    for line in lines:
        if pinned := re.fullmatch(r"([\w.-]+)(?:\[[\w,]+\])?==(\S+)", line.strip()):
            found[normalized(pinned[1])] = pinned[2]
    return found


def normalized(name: str) -> str:
    return re.sub(r"[-_.]+", "-", name).lower()


def install_pins() -> dict[str, str]:
    command = re.search(r"^pip install (.*)$", INSTALL[0].text, re.MULTILINE)
    assert command, "The install block has no `pip install` line."
    return pins(command[1].split())


def test_tutorial_installs_the_pinned_versions():
    required = pins((ROOT / "requirements.txt").read_text().splitlines())
    wanted = install_pins()
    assert wanted
    for name, version in wanted.items():
        assert required.get(name) == version, f"{name}: requirements.txt pins another"
        assert metadata.version(name) == version, f"{name}: this .venv has another"
    assert "python3 -m venv .venv" in INSTALL[0].text


def imported_packages(path: Path) -> set[str]:
    """The top-level modules a file imports, less the standard library's."""
    stdlib = set(sys.stdlib_module_names)
    return imported_names(path) - stdlib - {"khalti", "minimal"}


def test_tutorial_installs_every_package_the_example_imports():
    wanted = install_pins()
    installed = wanted | {
        normalized(re.split(r"[ ;<>=!\[(]", requirement)[0]): ""
        for name in wanted
        for requirement in metadata.requires(name) or []
        if "extra ==" not in requirement
    }
    distributions = metadata.packages_distributions()
    used = imported_packages(EXAMPLE) | imported_packages(ROOT / "khalti.py")
    used |= {"dotenv"}  # `flask` reads .env only with python-dotenv
    for module in used:
        names = {normalized(name) for name in distributions[module]}
        assert names & set(installed), f"Nothing in the pip install line has {module}"


@pytest.mark.parametrize("path", [TUTORIAL, API_REFERENCE], ids=lambda path: path.name)
def test_docs_python_survives_ruff_format(path):
    checked = subprocess.run(
        [sys.executable, "-m", "ruff", "format", "--check", "--diff", str(path)],
        capture_output=True,
        text=True,
    )
    assert checked.returncode == 0, checked.stdout + checked.stderr


@pytest.mark.parametrize("path", [TUTORIAL, API_REFERENCE], ids=lambda path: path.name)
def test_docs_json_samples_parse(path):
    samples = [block for block in readme_blocks(path) if block.language == "json"]
    for block in samples:
        try:
            json.loads(block.text)
        except ValueError as error:
            pytest.fail(f"{path.name} line {block.line}: {error}")


def test_tutorial_excerpts_are_verbatim_from_their_files():
    for block in CODE:
        if block.excerpt_of and not block.runs:
            source = block.excerpt_of.read_text()
            assert f"\n{block.text}" in f"\n{source}", f"line {block.line}"


# --- The reader's walk ---------------------------------------------------------


class TutorialReader(Reader):
    """A reader of the tutorial: the project in ~/khalti-demo-shop, and their
    own app in ~/myshop, with the project's packages, where commands run."""

    def __init__(self, tmp: Path):
        super().__init__(tmp)
        (self.home / "khalti-demo-shop").symlink_to(self.project)
        self.project = self.home / "myshop"  # where Reader runs the commands
        self.project.mkdir()
        venv = self.project / ".venv"
        venv.symlink_to(Path(sys.prefix))  # what the install block makes
        self.env["PATH"] = f"{venv / 'bin'}{os.pathsep}{self.env['PATH']}"
        self.env["VIRTUAL_ENV"] = str(venv)  # as `. .venv/bin/activate` does
        del self.env["KHALTI_BASE_URL"]  # the tutorial's .env says where

    def append(self, block: Block) -> None:
        """Add a piece to the end of its file, as the reader does."""
        path = self.project / block.markers["append"][0]
        before = path.read_text() + "\n\n" if path.exists() else ""
        path.write_text(before + block.text)


@pytest.fixture(scope="module")
def tutorial_reader(tmp_path_factory):
    need_a_readers_tools()
    return TutorialReader(tmp_path_factory.mktemp("tutorial"))


@pytest.mark.parametrize("block", WALK, ids=block_id)
def test_tutorial_walk(tutorial_reader, block):
    if block in PIECES:
        tutorial_reader.append(block)
    else:
        run_and_check(tutorial_reader, block)
