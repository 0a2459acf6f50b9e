"""`make run SANDBOX_PORT=...` moves the sandbox and the shop's calls to it
together, so a checkout never reaches whoever owns port 5001."""

import subprocess
from pathlib import Path

import config

ROOT = Path(__file__).resolve().parent.parent


def test_the_builtin_sandbox_follows_sandbox_port(monkeypatch):
    monkeypatch.delenv("KHALTI_SECRET_KEY", raising=False)
    monkeypatch.delenv("KHALTI_BASE_URL", raising=False)
    monkeypatch.setenv("SANDBOX_PORT", "5301")
    settings = config.from_environment()
    assert config.khalti_base_url(settings) == "http://127.0.0.1:5301/api/v2/"
    monkeypatch.delenv("SANDBOX_PORT")
    settings = config.from_environment()
    assert config.khalti_base_url(settings) == "http://127.0.0.1:5001/api/v2/"


def test_make_run_gives_both_servers_the_same_port():
    # -n prints the commands without running them; -o takes the venv and
    # .env as they are, so no install or .env would be printed either.
    printed = subprocess.run(
        ["make", "-n", "-o", ".venv/installed", "-o", ".env"]
        + ["run", "SHOP_PORT=5300", "SANDBOX_PORT=5301"],
        cwd=ROOT,
        capture_output=True,
        text=True,
        check=True,
    ).stdout
    assert "--app sandbox run --port 5301" in printed
    assert "SANDBOX_PORT=5301 .venv/bin/flask --app app run --port 5300" in printed
    assert "SANDBOX_SHOP_URL=http://127.0.0.1:5300/" in printed
