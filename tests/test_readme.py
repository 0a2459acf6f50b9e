"""The code of the README and of the docs pages in DOCS, checked so that it cannot rot.

Every Python or shell block in README.md (and in each page of DOCS below) is
one of two kinds:

- an excerpt: its caption (the text line just above it) starts with the
  backquoted path of a file in the project, e.g. "`examples/minimal.py`, the
  return route:". The block must then be whole lines copied verbatim from
  that file, which the rest of the suite runs;
- a run block: an HTML comment `<!-- run -->` sits between its caption and
  the fence. The block is executed, in the page's order, in one throwaway
  copy of the project per page with a fresh HOME, and must succeed. The
  pages under docs/ say their commands run once `make run` has made `.env`
  and the database; their copy is prepared so (`Reader.prepare`). Options go after a
  colon, comma-separated: `sandbox` serves sandbox.py on the README's port
  5001 while the block runs; `server` or `server PORT` says the block starts
  a server that must answer on http://127.0.0.1:PORT/ (default 5000) with
  no 5xx, after which it is stopped; `exit N` expects exit status N, not 0.

A block marked `<!-- output -->` right after a run block is what the reader
should see: each of its non-blank lines must appear in that run's output,
with `...` standing for any text. The README's ports 5000 and 5001 are
swapped for free ones everywhere (`127.0.0.1:5000`, `localhost:5000`,
`--port 5000`, and in SHOP_PORT and SANDBOX_PORT), so the tests never meet
a shop someone left running; KHALTI_BASE_URL points at the swapped sandbox
port, because the shop's built-in sandbox address names port 5001 itself.
JSON blocks must parse, and ruff must leave the Python blocks as they are.
"""

import json
import os
import re
import shutil
import signal
import subprocess
import sys
import threading
import time
from contextlib import nullcontext
from dataclasses import dataclass, field
from pathlib import Path

import pytest
import requests
from served_shop import free_port
from werkzeug.serving import make_server

import sandbox

ROOT = Path(__file__).resolve().parent.parent
README = ROOT / "README.md"
# The docs pages whose blocks are checked here, as the README's are. The
# tutorial and khalti-api.md have their own checks, in tests/test_tutorial.py.
DOCS = [README] + [
    ROOT / "docs" / name
    for name in (
        "how-it-works.md",
        "back-office.md",
        "going-live.md",
        "translating.md",
        "testing.md",
        "troubleshooting.md",
        "architecture.md",
        "RELIABILITY.md",
    )
]
CODE_LANGUAGES = {"python", "py", "sh", "bash", "shell", "console"}
# docs/tutorial.md adds `append` and `install` (see tests/test_tutorial.py).
MARKER = re.compile(r"<!--\s*(run|output|append|install)\s*(?::\s*(.*?))?\s*-->")
README_PORTS = ("5000", "5001")  # the shop or example, and the sandbox
PORT_MENTION = re.compile(r"(127\.0\.0\.1:|localhost:|--port )(5000|5001)\b")


@dataclass
class Block:
    line: int  # of the opening fence, counting from 1
    language: str
    text: str
    caption: str
    markers: dict[str, list[str]] = field(default_factory=dict)  # name -> options
    output: "Block | None" = None
    source: Path = README  # the Markdown file it is in

    @property
    def excerpt_of(self) -> Path | None:
        """The project file this block is copied from, if its caption names one."""
        named = re.match(r"[*_]*`([^`]+)`", self.caption)
        if named and (ROOT / named[1]).is_file():
            return ROOT / named[1]
        return None

    @property
    def runs(self) -> bool:
        return "run" in self.markers

    def option(self, name: str) -> list[str] | None:
        """The words after option `name` in the run marker, or None if absent."""
        for option in self.markers.get("run", []):
            words = option.split()
            if words and words[0] == name:
                return words[1:]
        return None


def readme_blocks(path: Path = README) -> list[Block]:
    """The fenced blocks of the README (or another Markdown file), with their
    captions and markers."""
    blocks, lines = [], path.read_text().splitlines()
    number = 0
    while number < len(lines):
        opening = re.match(r"( *)```(\S*)\s*$", lines[number])
        if not opening:
            number += 1
            continue
        indent = opening[1]  # a block in a list item is indented
        end = lines.index(f"{indent}```", number + 1)
        markers, above = {}, number - 1
        while above >= 0 and (not lines[above].strip() or MARKER.search(lines[above])):
            if marker := MARKER.search(lines[above]):
                options = marker[2].split(",") if marker[2] else []
                markers[marker[1]] = [option.strip() for option in options]
            above -= 1
        caption = lines[above].strip() if above >= 0 else ""
        text = "".join(
            line.removeprefix(indent) + "\n" for line in lines[number + 1 : end]
        )
        blocks.append(
            Block(number + 1, opening[2], text, caption, markers, source=path)
        )
        number = end + 1
    for before, block in zip(blocks, blocks[1:], strict=False):
        if "output" in block.markers:
            assert before.runs, f"{path.name} line {block.line}: output of no run block"
            before.output = block
    return blocks


BLOCKS = [block for path in DOCS for block in readme_blocks(path)]
CODE = [block for block in BLOCKS if block.language in CODE_LANGUAGES]
EXCERPTS = [block for block in CODE if block.excerpt_of and not block.runs]
RUNS = [block for block in CODE if block.runs]


def block_id(block: Block) -> str:
    return f"{block.source.stem}-line{block.line}"


def test_readme_every_code_block_is_an_excerpt_or_runs():
    unchecked = [
        f"{block.source.name} line {block.line}: {block.caption!r}"
        for block in CODE
        if not block.runs and not block.excerpt_of
    ]
    assert not unchecked, (
        "Caption these blocks with the file they come from, or mark them"
        f" <!-- run -->: {unchecked}"
    )
    assert RUNS


def test_readme_excerpts_are_verbatim_from_their_files():
    # The pages quote no file today (the tutorial builds its file with
    # append blocks instead); a quote added later is checked here.
    for block in EXCERPTS:
        source = block.excerpt_of.read_text()
        assert f"\n{block.text}" in f"\n{source}", (
            f"{block.source.name} line {block.line} is not a verbatim excerpt of"
            f" {block.excerpt_of.relative_to(ROOT)}"
        )


@pytest.mark.parametrize("path", DOCS, ids=lambda path: path.name)
def test_readme_python_survives_ruff_format(path):
    """ruff formats the Python blocks of the README and the pages: it must
    find nothing to change, or excerpts would drift from their files (an
    indented excerpt would be dedented, for one)."""
    checked = subprocess.run(
        [sys.executable, "-m", "ruff", "format", "--check", "--diff", str(path)],
        capture_output=True,
        text=True,
    )
    assert checked.returncode == 0, checked.stdout + checked.stderr


def test_readme_json_samples_parse():
    for block in BLOCKS:
        if block.language == "json":
            json.loads(block.text)


def test_readme_docs_pages_are_all_checked():
    """Every page under docs/ is checked here or in tests/test_tutorial.py,
    but BENCHMARKS.md, whose `make bench` takes minutes and installs wrk."""
    checked_elsewhere = {"tutorial.md", "khalti-api.md", "BENCHMARKS.md"}
    pages = {path.name for path in (ROOT / "docs").glob("*.md")}
    assert pages - checked_elsewhere <= {path.name for path in DOCS}


# --- Running the run blocks ----------------------------------------------------


class Reader:
    """A reader's machine: a copy of the project, a HOME, ports nobody else uses."""

    def __init__(self, tmp: Path):
        self.project = tmp / "khalti-demo-shop"
        self.home = tmp / "home"
        self.home.mkdir()
        shutil.copytree(
            ROOT,
            self.project,
            ignore=shutil.ignore_patterns(
                ".git", ".venv", ".env", "instance", "*.db", "__pycache__", ".*_cache"
            ),
        )
        # The project's own virtual environment, so make does not build one.
        (self.project / ".venv").symlink_to(Path(sys.prefix))
        ports = {free_port()}
        while len(ports) < len(README_PORTS):
            ports.add(free_port())
        self.ports = dict(zip(README_PORTS, sorted(ports), strict=True))
        self.env = {
            name: value
            for name, value in os.environ.items()
            if not name.startswith(("KHALTI_", "SANDBOX_", "FLASK_", "VIRTUAL_ENV"))
            and name not in ("SECRET_KEY", "DATABASE_URL", "PYTHONPATH")
        } | {
            "HOME": str(self.home),
            "SHOP_PORT": str(self.ports["5000"]),
            "SANDBOX_PORT": str(self.ports["5001"]),
            # The shop's built-in sandbox address names port 5001 itself.
            "KHALTI_BASE_URL": self.localize("http://127.0.0.1:5001/api/v2/"),
        }

    def prepare(self) -> None:
        """What `make run` leaves behind, which the docs pages start from:
        a private `.env` and the database with its sample products."""
        for command in (
            ["make", "--no-print-directory", ".env"],
            [".venv/bin/flask", "--app", "app", "init-db"],
        ):
            subprocess.run(
                command,
                cwd=self.project,
                env=self.env,
                check=True,
                capture_output=True,
                timeout=120,
            )

    def localize(self, text: str) -> str:
        """Swap the README's ports for this machine's."""
        return PORT_MENTION.sub(lambda found: f"{found[1]}{self.ports[found[2]]}", text)

    def command(self, block: Block) -> list[str]:
        code = self.localize(block.text)
        if block.language in ("python", "py"):
            script = self.project / f"readme_line{block.line}.py"
            script.write_text(code)
            return [sys.executable, script.name]
        return ["bash", "-euo", "pipefail", "-c", code]

    def run(self, block: Block) -> str:
        """Run a block to the end; return its output."""
        finished = subprocess.run(
            self.command(block),
            cwd=self.project,
            env=self.env,
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            text=True,
            timeout=120,
        )
        expected = block.option("exit")
        assert finished.returncode == int(expected[0] if expected else 0), (
            finished.stdout
        )
        return finished.stdout

    def serve(self, block: Block, port: str) -> str:
        """Start a server block, wait until it answers, stop it; return its output."""
        log_path = self.home / f"line{block.line}.log"
        url = f"http://127.0.0.1:{self.ports[port]}/"
        with open(log_path, "w") as log:
            process = subprocess.Popen(
                self.command(block),
                cwd=self.project,
                env=self.env,
                stdout=log,
                stderr=subprocess.STDOUT,
                start_new_session=True,  # to stop make and the servers it starts
            )
        try:
            wait_for(url, process, log_path)
            time.sleep(0.5)  # let the other servers print their first lines
        finally:
            os.killpg(process.pid, signal.SIGTERM)
            process.wait(timeout=15)
        return log_path.read_text()


def wait_for(url: str, process: subprocess.Popen, log_path: Path) -> None:
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        assert process.poll() is None, log_path.read_text()
        try:
            response = requests.get(url, timeout=5)
            assert response.status_code < 500, response.text
            return
        except requests.ConnectionError:
            time.sleep(0.2)
    raise AssertionError(f"{url} never answered:\n{log_path.read_text()}")


class SandboxOn:
    """sandbox.py served on a given port, for as long as the `with` lasts."""

    def __init__(self, port: int):
        app = sandbox.create_app({"TESTING": True})
        self.server = make_server("127.0.0.1", port, app, threaded=True)

    def __enter__(self):
        threading.Thread(target=self.server.serve_forever, daemon=True).start()

    def __exit__(self, *exc_info):
        self.server.shutdown()
        self.server.server_close()


def need_a_readers_tools() -> None:
    """Skip (fail in CI) unless this machine can run the docs' commands."""
    problems = [
        f"The docs' commands need {tool}; install it to run them."
        for tool in ("make", "curl")
        if shutil.which(tool) is None
    ]
    # The copy borrows this virtual environment; without make's stamp in it,
    # make would try to rebuild it in place.
    if not (Path(sys.prefix) / "installed").exists():
        problems.append("Run the docs' commands from the project's .venv.")
    if problems:
        if os.environ.get("CI"):
            pytest.fail(" ".join(problems))
        pytest.skip(" ".join(problems))


@pytest.fixture(scope="module")
def readers(tmp_path_factory):
    """One reader per page, made when its first run block comes."""
    need_a_readers_tools()
    made: dict[Path, Reader] = {}

    def reader_of(path: Path) -> Reader:
        if path not in made:
            made[path] = Reader(tmp_path_factory.mktemp(path.stem))
            if path != README:
                made[path].prepare()
        return made[path]

    return reader_of


def matches(expected: str, output: str) -> bool:
    """Whether `output` has a line containing `expected`, `...` being any text."""
    pattern = ".*".join(map(re.escape, expected.strip().split("...")))
    return any(re.search(pattern, line) for line in output.splitlines())


@pytest.mark.parametrize("block", RUNS, ids=block_id)
def test_readme_runs(readers, block):
    run_and_check(readers(block.source), block)


def run_and_check(reader: Reader, block: Block) -> None:
    """Run a run block as the reader would; check its output block, if any."""
    server = block.option("server")
    needs_sandbox = block.option("sandbox") is not None
    with SandboxOn(reader.ports["5001"]) if needs_sandbox else nullcontext():
        if server is None:
            output = reader.run(block)
        else:
            output = reader.serve(block, server[0] if server else "5000")
    if block.output:
        missing = [
            line
            for line in reader.localize(block.output.text).splitlines()
            if line.strip() and not matches(line, output)
        ]
        assert not missing, (
            f"Not in the output of line {block.line}: {missing}\n{output}"
        )
