"""The ``citybot`` command line (the black-box contract in DESIGN.md).

Each sub-command lives in ``bot/commands/<name>.py`` as ``run(args) -> int`` and is imported only
when used, so ``citybot forms lint`` starts fast and never loads the web stack.
"""

from __future__ import annotations

import argparse
import importlib
import sys
from collections.abc import Sequence

from bot.version import VERSION
from staff.roles import Role

__all__ = ["main"]


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="citybot", description="A city's front door in chat.")
    parser.add_argument("--version", action="version", version=f"citybot {VERSION}")
    sub = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")

    serve = sub.add_parser("serve", help="run the web server and the workers")
    serve.add_argument("--host", help="listen address (CITYBOT_HOST, default 127.0.0.1)")
    serve.add_argument("--port", type=int, help="listen port (CITYBOT_PORT, default 8080)")
    serve.add_argument(
        "--telegram-polling", action="store_true", help="long-poll Telegram instead of a webhook"
    )
    serve.add_argument("--no-workers", action="store_true", help="serve HTTP only")
    serve.add_argument(
        "--no-replies",
        action="store_true",
        help="leave the queued replies to citybot worker processes (needs CITYBOT_REDIS_URL)",
    )
    serve.set_defaults(module="serve")

    worker = sub.add_parser("worker", help="run the workers only (filer, notifier, dispatch)")
    worker.add_argument(
        "--only", metavar="NAMES", help="run only these workers, comma-separated (e.g. replies)"
    )
    worker.set_defaults(module="worker")

    sub.add_parser(
        "check", help="check the settings, database, Redis, providers and city; exit 1 on failure"
    ).set_defaults(module="check")

    chat = sub.add_parser("chat", help="talk to the bot in this terminal")
    chat.add_argument(
        "--channel", default="terminal", choices=["terminal", "sms", "whatsapp", "telegram"]
    )
    chat.add_argument("--locale", default="en", help="start in this language (en, af, zu, xh)")
    chat.add_argument("--form", help="open this form straight away")
    chat.add_argument(
        "--database",
        help="keep the conversation in this database URL (default: a throw-away SQLite file)",
    )
    chat.set_defaults(module="chat")

    forms = sub.add_parser("forms", help="work with form definitions")
    forms_sub = forms.add_subparsers(dest="forms_command", required=True, metavar="ACTION")
    lint = forms_sub.add_parser("lint", help="check forms; exit 1 on any error")
    lint.add_argument(
        "paths", nargs="*", help="YAML files or folders (default: the standard forms)"
    )
    lint.add_argument("--format", choices=["text", "json"], default="text")
    lint.set_defaults(module="forms_lint")
    listing = forms_sub.add_parser("list", help="list the forms citybot offers")
    listing.add_argument("--locale", default="en")
    listing.set_defaults(module="forms_list")
    imp = forms_sub.add_parser("import-open311", help="write form YAML from an Open311 endpoint")
    imp.add_argument("url", help="the GeoReport v2 base URL, e.g. https://city.example/open311/v2")
    imp.add_argument("--out", default="forms", help="folder to write the YAML into")
    imp.add_argument("--api-key")
    imp.add_argument("--jurisdiction-id")
    imp.set_defaults(module="forms_import")

    db = sub.add_parser("db", help="database schema")
    db_sub = db.add_subparsers(dest="db_command", required=True, metavar="ACTION")
    db_sub.add_parser("upgrade", help="apply migrations").set_defaults(module="db_upgrade")

    telegram = sub.add_parser("telegram", help="Telegram set-up")
    tg_sub = telegram.add_subparsers(dest="telegram_command", required=True, metavar="ACTION")
    tg_sub.add_parser("set-webhook", help="register the webhook with its secret").set_defaults(
        module="telegram_webhook"
    )

    roles = [role.value for role in Role]
    staff = sub.add_parser("staff", help="staff accounts and API tokens")
    staff_sub = staff.add_subparsers(dest="staff_command", required=True, metavar="ACTION")
    add = staff_sub.add_parser("add", help="create an account; prints a one-time password")
    add.add_argument("email")
    add.add_argument(
        "--role",
        dest="roles",
        action="extend",
        nargs="+",
        required=True,
        choices=roles,
        metavar="ROLE",
        help=f"one or more of: {', '.join(roles)}",
    )
    add.add_argument("--name", default="", help="the person's name")
    add.add_argument(
        "--ward",
        dest="wards",
        action="extend",
        nargs="+",
        metavar="WARD",
        help="limit the account to these wards (default: the whole city)",
    )
    add.add_argument(
        "--language",
        dest="languages",
        action="extend",
        nargs="+",
        default=[],
        metavar="CODE",
        help="languages the person speaks (en, af, zu, xh)",
    )
    staff_sub.add_parser("list", help="list every account")
    disable = staff_sub.add_parser("disable", help="stop an account signing in or using tokens")
    disable.add_argument("email")
    token = staff_sub.add_parser("token", help="issue an API token; printed once")
    token.add_argument("email")
    token.add_argument(
        "--role",
        dest="roles",
        action="extend",
        nargs="+",
        required=True,
        choices=roles,
        metavar="ROLE",
        help="roles the token carries (the account must hold them)",
    )
    token.add_argument("--days", type=int, default=90, help="valid for this many days (1-365)")
    staff.set_defaults(module="staff")

    audit = sub.add_parser("audit", help="the staff audit log")
    audit_sub = audit.add_subparsers(dest="audit_command", required=True, metavar="ACTION")
    audit_sub.add_parser("verify", help="check the audit log's hash chain").set_defaults(
        module="audit_verify"
    )

    data = sub.add_parser("data", help="the requests' data")
    data_sub = data.add_subparsers(dest="data_command", required=True, metavar="ACTION")
    fill = data_sub.add_parser(
        "backfill", help="place older requests (ward, suburb, area type) from their pins or text"
    )
    fill.add_argument(
        "--batch-size", type=int, default=1000, help="rows per transaction (default 1000)"
    )
    fill.set_defaults(module="data_backfill")

    demo = sub.add_parser("demo", help="synthetic requests for the dashboard and open data")
    demo_sub = demo.add_subparsers(dest="demo_command", required=True, metavar="ACTION")
    seed = demo_sub.add_parser("seed", help="write demo requests across the real wards")
    seed.add_argument("--requests", type=int, default=100_000, help="how many (default 100000)")
    seed.add_argument("--days", type=int, default=180, help="spread over this many days (180)")
    demo_sub.add_parser("clear", help="remove every demo request")
    demo.set_defaults(module="demo")

    gaz = sub.add_parser("gazetteer", help="the place names residents use")
    gaz_sub = gaz.add_subparsers(dest="gazetteer_command", required=True, metavar="ACTION")
    build = gaz_sub.add_parser("build", help="compile a gazetteer from a city's open data")
    build.add_argument("--data", default="../shared/data", help="folder with the source files")
    build.add_argument("--out", help="output file (default: the packaged Cape Town gazetteer)")
    build.add_argument("--city", default="Cape Town", help="the city's name, stored in the file")
    build.set_defaults(module="gazetteer_build")
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    args = _parser().parse_args(argv)
    module = importlib.import_module(f"bot.commands.{args.module}")
    code: int = module.run(args)
    return code


if __name__ == "__main__":
    sys.exit(main())
