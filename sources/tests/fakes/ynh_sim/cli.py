"""Command line of the simulator: arguments, lock, error handling, exit codes (§2.1)."""

from __future__ import annotations

import argparse
import os
import re
import sys
import traceback
from collections.abc import Callable
from typing import Any

from . import archives, backup_create, misc, restore
from .console import Console
from .context import Context
from .lock import SimLock
from .messages import YunohostError, m18n
from .state import SimConfigError, SimState
from .util import ARCHIVE_NAME_PATTERN, name_matches_pattern

PORT_PATTERN = (
    r"((^|(?!\A):)([0-9]{1,4}|[1-5][0-9]{4}|6[0-4][0-9]{3}|65[0-4][0-9]{2}|655[0-2][0-9]"
    r"|6553[0-5])){1,2}?$"
)
# Commands a server accepts before its post-install (YunoHost's check before postinstall)
ALLOWED_BEFORE_POSTINSTALL = {
    "tools postinstall",
    "tools versions",
    "tools shell",
    "backup list",
    "backup restore",
    "log display",
}
# Actions whose API verb is GET take no lock (§2.1)
READ_ONLY = {
    "backup list",
    "backup info",
    "backup download",
    "app list",
    "hook list",
    "user group info",
    "firewall list",
    "tools versions",
}


def global_parser() -> argparse.ArgumentParser:
    """Options accepted anywhere on the line (bin/yunohost, via parse_known_args)."""
    parser = argparse.ArgumentParser(add_help=False)
    parser.add_argument("--output-as", choices=["json", "plain", "none"], default=None)
    parser.add_argument("--debug", action="store_true")
    parser.add_argument("--quiet", action="store_true")
    parser.add_argument("--version", action="store_true")
    parser.add_argument("--timeout", type=int, default=None)
    parser.add_argument("--plain", action="store_true", help=argparse.SUPPRESS)
    parser.add_argument("--json", action="store_true", help=argparse.SUPPRESS)
    return parser


def _add_backup_commands(categories: Any) -> None:
    backup = categories.add_parser("backup").add_subparsers(dest="action", required=True)
    create = backup.add_parser("create")
    create.add_argument("-n", "--name")
    create.add_argument("-d", "--description")
    create.add_argument("-o", "--output-directory")
    create.add_argument("--methods", nargs="*")
    create.add_argument("--system", nargs="*")
    create.add_argument("--apps", nargs="*")
    create.add_argument("--dry-run", action="store_true")
    restore_parser = backup.add_parser("restore")
    restore_parser.add_argument("name")
    restore_parser.add_argument("--system", nargs="*")
    restore_parser.add_argument("--apps", nargs="*")
    restore_parser.add_argument("--force", action="store_true")
    listing = backup.add_parser("list")
    listing.add_argument("-i", "--with-info", action="store_true")
    listing.add_argument("-H", "--human-readable", action="store_true")
    info = backup.add_parser("info")
    info.add_argument("name")
    info.add_argument("-d", "--with-details", action="store_true")
    info.add_argument("-H", "--human-readable", action="store_true")
    backup.add_parser("delete").add_argument("name")
    backup.add_parser("download").add_argument("name")


def _add_other_commands(categories: Any) -> None:
    app = categories.add_parser("app").add_subparsers(dest="action", required=True)
    app.add_parser("list").add_argument("-f", "--full", action="store_true")

    hook = categories.add_parser("hook").add_subparsers(dest="action", required=True)
    hook_list = hook.add_parser("list")
    hook_list.add_argument("hook_action", metavar="action")
    hook_list.add_argument(
        "-l", "--list-by", choices=["name", "priority", "folder"], default="name"
    )
    hook_list.add_argument("-i", "--show-info", action="store_true")

    user = categories.add_parser("user").add_subparsers(dest="subcategory", required=True)
    group = user.add_parser("group").add_subparsers(dest="action", required=True)
    group.add_parser("info").add_argument("groupname")

    firewall = categories.add_parser("firewall").add_subparsers(dest="action", required=True)
    for action in ("allow", "disallow"):
        parser = firewall.add_parser(action)
        parser.add_argument("protocol", choices=["TCP", "UDP", "Both"])
        parser.add_argument("port")
        parser.add_argument("-4", "--ipv4-only", action="store_true")
        parser.add_argument("-6", "--ipv6-only", action="store_true")
        parser.add_argument(
            "--no-upnp" if action == "allow" else "--upnp-only", action="store_true"
        )
        parser.add_argument("--no-reload", action="store_true")
    fw_list = firewall.add_parser("list")
    fw_list.add_argument("-r", "--raw", action="store_true")
    fw_list.add_argument("-p", "--protocol", choices=["tcp", "udp"], default="tcp")
    fw_list.add_argument("-f", "--forwarded", action="store_true")

    tools = categories.add_parser("tools").add_subparsers(dest="action", required=True)
    tools.add_parser("versions")


def command_parser() -> argparse.ArgumentParser:
    """The actions map: exactly the commands and arguments of YUNOHOST.md §2."""
    parser = argparse.ArgumentParser(prog="yunohost")
    categories = parser.add_subparsers(dest="category", required=True)
    _add_backup_commands(categories)
    _add_other_commands(categories)
    return parser


def command_key(args: argparse.Namespace) -> str:
    """ "backup create", "user group info"…: the key used by behaviour.json `fail`."""
    parts = [args.category, getattr(args, "subcategory", None), args.action]
    return " ".join(part for part in parts if part)


def validate_patterns(console: Console, key: str, args: argparse.Namespace) -> None:
    """Actionsmap `pattern` extras: checked while parsing, before the lock (§1.9)."""
    checks: list[tuple[str, str, str, str]] = []
    if key in ("backup create", "backup delete"):
        checks.append(
            ("name", args.name or "", ARCHIVE_NAME_PATTERN, "pattern_backup_archive_name")
        )
    if key in ("firewall allow", "firewall disallow"):
        checks.append(("port", args.port, PORT_PATTERN, "pattern_port_or_range"))
    for arg_name, value, pattern, message in checks:
        valid = (
            name_matches_pattern(value)
            if arg_name == "name"
            else bool(re.match(pattern, value, re.UNICODE))
        )
        if not valid:
            console.warning(
                f"argument value '{value}' for '{arg_name}' doesn't match pattern '{pattern}'"
            )
            raise YunohostError(
                m18n("invalid_argument", argument=arg_name, error=m18n(message)), raw_msg=True
            )


def dispatch(ctx: Context, key: str, args: argparse.Namespace) -> Any:
    """Call the simulated implementation of the command."""
    handlers: dict[str, Callable[[], Any]] = {
        "backup create": lambda: backup_create.backup_create(
            ctx,
            name=args.name,
            description=args.description,
            output_directory=args.output_directory,
            methods=args.methods,
            system=args.system,
            apps=args.apps,
            dry_run=args.dry_run,
        ),
        "backup restore": lambda: restore.backup_restore(
            ctx, name=args.name, system=args.system, apps=args.apps, force=args.force
        ),
        "backup list": lambda: archives.backup_list(
            ctx, with_info=args.with_info, human_readable=args.human_readable
        ),
        "backup info": lambda: archives.backup_info(
            ctx, args.name, with_details=args.with_details, human_readable=args.human_readable
        ),
        "backup delete": lambda: archives.backup_delete(ctx, args.name),
        "backup download": lambda: ctx.console.error(
            "This option is only meant for the API/webadmin and doesn't make sense for the "
            "command line."
        ),
        "app list": lambda: misc.app_list(ctx, full=args.full),
        "hook list": lambda: misc.hook_list(
            ctx, action=args.hook_action, list_by=args.list_by, show_info=args.show_info
        ),
        "user group info": lambda: misc.user_group_info(ctx, groupname=args.groupname),
        "firewall allow": lambda: misc.firewall_allow(
            ctx,
            protocol=args.protocol,
            port=args.port,
            no_upnp=args.no_upnp,
            no_reload=args.no_reload,
        ),
        "firewall disallow": lambda: misc.firewall_disallow(
            ctx, protocol=args.protocol, port=args.port, no_reload=args.no_reload
        ),
        "firewall list": lambda: misc.firewall_list(
            ctx, raw=args.raw, protocol=args.protocol, forwarded=args.forwarded
        ),
        "tools versions": lambda: misc.tools_versions(ctx),
    }
    return handlers[key]()


def _run(ctx: Context, key: str, args: argparse.Namespace, timeout: int | None) -> Any:
    """Take the lock for write actions, apply behaviour.json `fail`, run the command."""
    lock = None
    if key not in READ_ONLY:
        warn = float(ctx.environ.get("YNH_SIM_LOCK_WARN_SECONDS") or 15)
        lock = SimLock(ctx.state.root / "lock", ctx.console, warn)
        ctx.console.debug("acquiring lock...")
        lock.acquire(timeout)
        ctx.console.debug("lock has been acquired")
    try:
        failure = ctx.behaviour().get("fail", {}).get(key)
        if failure:
            raise YunohostError(str(failure), raw_msg=True)
        return dispatch(ctx, key, args)
    finally:
        if lock is not None:
            lock.release()


def main(argv: list[str] | None = None) -> int:
    """Entry point; returns the exit code."""
    argv = list(sys.argv[1:] if argv is None else argv)
    environ = dict(os.environ)
    try:
        state = SimState.from_environ(environ)
    except SimConfigError as error:
        print(str(error), file=sys.stderr)
        return 1
    state.record_call(argv)

    # bin/yunohost refuses non-root users first (§2.1); simulated only on request
    if environ.get("YNH_SIM_REQUIRE_ROOT") == "1" and os.geteuid() != 0:
        print(
            "\033[1;31mError:\033[0m yunohost command must be run as root or with sudo.",
            file=sys.stderr,
        )
        return 1

    opts, rest = global_parser().parse_known_args(argv)
    output_as = "plain" if opts.plain else "json" if opts.json else opts.output_as
    if opts.version:
        rest = ["tools", "versions"]
    console = Console(quiet=opts.quiet, debug=opts.debug)

    if not state.is_postinstalled() and " ".join(rest[:2]) not in ALLOWED_BEFORE_POSTINSTALL:
        print("Error: " + m18n("yunohost_not_installed"))
        return 1
    if not rest:
        console.error(m18n("invalid_usage"))
        return 1
    args = command_parser().parse_args(rest)  # exits 2 on a usage error
    key = command_key(args)
    ctx = Context(state=state, console=console, environ=environ)
    try:
        validate_patterns(console, key, args)
        result = _run(ctx, key, args, opts.timeout)
    except YunohostError as error:
        for operation in ctx.operations:
            operation.error()
        console.error(error.message)
        return 1
    except KeyboardInterrupt:
        console.error(m18n("operation_interrupted"))
        return 1
    except Exception:
        # An uncaught exception in YunoHost: traceback on stderr, exit 1 (§2.1)
        for operation in ctx.operations:
            operation.error()
        traceback.print_exc()
        return 1
    console.result(result, output_as)
    return 0
