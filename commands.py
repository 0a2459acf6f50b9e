"""The shop's command-line tools, run as `flask --app app <command>`.

- `init-db`: bring the tables up to date, and fill an empty catalog;
- `create-staff`: the first back office account (or a new password);
- `reconcile`: settle the payments whose buyers never came back (cron);
- `check-deploy`: the go-live checklist, as code.
"""

import ipaddress
import re
import stat
import sys
from pathlib import Path
from urllib.parse import urlsplit

import click
from flask import current_app
from flask.cli import with_appcontext
from sqlalchemy import make_url, select
from werkzeug.security import generate_password_hash

import khalti
from config import BUILTIN_SANDBOX_KEY, is_production
from database import SCHEMA_BEFORE_MIGRATIONS, db, upgrade_database
from models import MIN_PASSWORD_LENGTH, Staff, seed_catalog
from payments import reconcile_orders


def init_app(app) -> None:
    """Register the commands (called by `create_app`)."""
    for command in (init_db, create_staff, reconcile, check_deploy):
        app.cli.add_command(command)


@click.command("init-db")
@with_appcontext
def init_db():
    """Upgrade the tables to the newest migration; add the sample products
    if the catalog is empty. Safe to run on every start."""
    if upgrade_database():
        click.echo(
            "Found tables made before migrations: marked as revision"
            f" {SCHEMA_BEFORE_MIGRATIONS}, then upgraded."
        )
    added = seed_catalog()
    click.echo(f"Database ready; {added} sample products added.")


@click.command("create-staff")
@click.argument("email")
@with_appcontext
def create_staff(email):
    """Create a staff account, or set a new password for an existing one.

    A new password ends every session of that account, and enables it again
    if it was disabled: this is also the way back in for a locked-out owner.

    The password is read from standard input (its first line) when that is
    not a terminal, so scripts can pipe it in; otherwise it is asked twice.
    """
    email = email.strip().lower()
    if not re.fullmatch(r"[^@\s]+@[^@\s]+", email) or len(email) > 254:
        raise click.ClickException(f"{email!r} is not an email address.")
    if sys.stdin.isatty():
        password = click.prompt("Password", hide_input=True, confirmation_prompt=True)
    else:
        password = sys.stdin.readline().rstrip("\r\n")
    if len(password) < MIN_PASSWORD_LENGTH:
        raise click.ClickException(
            f"Refused: the password must be at least {MIN_PASSWORD_LENGTH}"
            " characters long."
        )
    staff = db.session.scalar(select(Staff).where(Staff.email == email))
    if staff is None:
        db.session.add(
            Staff(email=email, password_hash=generate_password_hash(password))
        )
        done = f"Created staff account {email}."
    else:
        staff.set_password(password)
        staff.active = True
        staff.must_change_password = False
        done = f"Set a new password for {email}; its sessions are ended."
    db.session.commit()
    click.echo(done)


@click.command("reconcile")
@click.option(
    "--older-than",
    "minutes",
    default=0,
    type=click.IntRange(min=0),
    help="Only orders at least this many minutes old.",
)
@click.option(
    "--paid-within",
    "days",
    default=None,
    type=click.IntRange(min=1),
    help="Also look up orders paid or partially refunded in the last DAYS days.",
)
@with_appcontext
def reconcile(minutes, days):
    """Look up every unsettled order at Khalti and apply the answer.

    Buyers who pay and close the tab never come back, and Khalti has no
    webhook, so run this from cron every few minutes. Orders abandoned
    before their payment started are failed, freeing their stock. With
    --paid-within, run daily, refunds made on Khalti's dashboard reach
    their orders too.
    """
    reconcile_orders(minutes, days, report=click.echo)


def is_loopback(host: str | None) -> bool:
    """Whether a URL's host is this machine, so nothing crosses a network."""
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host or "").is_loopback
    except ValueError:
        return False


def khalti_findings(config, staging: bool) -> list[tuple[str, str]]:
    """Where the secret key goes: Khalti's live API for a live shop, and TLS."""
    findings = []
    base_url = config["KHALTI_BASE_URL"]
    live_shop = (config["SHOP_URL"] or "").startswith("https://")
    if live_shop and not is_production(config) and not staging:
        findings.append(
            (
                "ERROR",
                f"SHOP_URL is a live https:// address but KHALTI_BASE_URL is"
                f" {base_url}, not Khalti's production API: payments there can"
                f" be made 'Completed' without money. Set KHALTI_BASE_URL="
                f"{khalti.PRODUCTION_BASE_URL} and your live key, or, for a"
                " staging shop, run check-deploy --staging.",
            )
        )
    parts = urlsplit(base_url)
    if parts.scheme == "http" and not is_loopback(parts.hostname):
        findings.append(
            (
                "ERROR",
                f"KHALTI_BASE_URL {base_url} is plain http:// to another machine:"
                " the secret key would cross the network unencrypted. Use its"
                " https:// address.",
            )
        )
    return findings


def env_file_findings(project_folder: Path) -> list[tuple[str, str]]:
    """A .env readable by other users gives them SECRET_KEY, so staff sessions."""
    env_file = project_folder / ".env"
    if not env_file.exists():
        return []
    mode = stat.S_IMODE(env_file.stat().st_mode)
    if not mode & (stat.S_IRWXG | stat.S_IRWXO):
        return []
    return [
        (
            "ERROR",
            f"{env_file} is readable by other users (mode {mode:04o}): its"
            f" SECRET_KEY lets them sign a staff session. Run: chmod 600 {env_file}",
        )
    ]


def deploy_findings(
    config, project_folder: Path | None = None, staging: bool = False
) -> list[tuple[str, str]]:
    """What check-deploy reports about a configuration: (level, message) pairs.

    docs/going-live.md's checklist, as code. It reads the configuration,
    and the permissions of the .env in `project_folder`, only. (With the
    example's placeholder SECRET_KEY the app, so this command too, does not
    even start: see config.check_secret_key.)
    """
    findings = khalti_findings(config, staging)
    if project_folder is not None:
        findings += env_file_findings(project_folder)
    if len(config["SECRET_KEY"]) < 32:
        findings.append(("ERROR", "SECRET_KEY is shorter than 32 characters."))
    shop_url = config["SHOP_URL"] or ""
    if is_production(config):
        if config["KHALTI_SECRET_KEY"] in (None, BUILTIN_SANDBOX_KEY):
            findings.append(
                (
                    "ERROR",
                    "KHALTI_SECRET_KEY is not your live key from admin.khalti.com.",
                )
            )
        if not config["SESSION_COOKIE_SECURE"]:
            findings.append(("ERROR", "SESSION_COOKIE_SECURE is off: set it to 1."))
        if not shop_url.startswith("https://"):
            findings.append(("ERROR", "SHOP_URL must be the shop's https:// address."))
        if make_url(config["SQLALCHEMY_DATABASE_URI"]).get_backend_name() == "sqlite":
            findings.append(
                ("ERROR", "DATABASE_URL is SQLite: use a server database (PostgreSQL).")
            )
        if config["RATELIMIT_STORAGE_URI"].startswith("memory://"):
            findings.append(
                (
                    "ERROR",
                    "RATELIMIT_STORAGE_URI is memory://: each worker counts failed"
                    " logins alone. Set it to your Redis, e.g."
                    " redis://127.0.0.1:6379/0.",
                )
            )
    if shop_url.startswith("https://") and not config["FORWARDED_ALLOW"]:
        findings.append(
            (
                "WARNING",
                "FORWARDED_ALLOW is 0: behind a proxy the client address and"
                " request.is_secure will be the proxy's.",
            )
        )
    return findings


@click.command("check-deploy")
@click.option(
    "--staging",
    is_flag=True,
    help="A staging shop: an https:// SHOP_URL may use Khalti's sandbox.",
)
@with_appcontext
def check_deploy(staging):
    """Check the configuration for going live; exit 1 if anything is wrong.

    It reads the settings (and .env's permissions) only and connects to nothing.
    """
    config = current_app.config
    findings = deploy_findings(config, Path(current_app.root_path), staging)
    if staging:
        click.echo("Staging: Khalti's sandbox is accepted with an https:// SHOP_URL.")
    for level, message in findings:
        click.echo(f"{level}: {message}")
    host = "production" if is_production(config) else "sandbox"
    click.echo(
        f"{len(findings)} findings; Khalti API {config['KHALTI_BASE_URL']} ({host})."
    )
    if any(level == "ERROR" for level, _ in findings):
        raise SystemExit(1)
