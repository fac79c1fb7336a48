"""`app list`, `hook list`, `user group info`, `firewall …` and `tools versions` (§2.4)."""

from __future__ import annotations

from typing import Any

from . import apps as sim_apps
from .context import Context
from .hooks import backup_parts, system_restore_hooks
from .messages import YunohostValidationError, m18n


def app_list(ctx: Context, *, full: bool = False) -> dict[str, Any]:
    """Installed apps sorted by id; --full adds the `app info --full` keys (§2.4)."""
    out = []
    for app in sorted(ctx.state.load_apps(), key=lambda a: str(a.get("id"))):
        info: dict[str, Any] = {
            "id": app["id"],
            "name": app.get("name", app["id"]),
            "description": app.get("description", ""),
            "version": app.get("version", "-"),
        }
        if "domain" in app and "path" in app:
            info["domain_path"] = app["domain"] + app["path"]
        if full:
            info.update(_full_info(app))
        out.append(info)
    return {"apps": out}


def _full_info(app: dict[str, Any]) -> dict[str, Any]:
    app_id = app["id"]
    supports = bool(app.get("supports_backup_restore", True))
    settings = {
        "app": app_id,
        "id": app_id,
        "install_dir": sim_apps.install_dir(app_id),
        "data_dir": sim_apps.data_dir(app_id),
    }
    for key in ("domain", "path"):
        if key in app:
            settings[key] = app[key]
    is_webapp = "domain" in app and "path" in app
    return {
        "upgrade": {"status": "up_to_date", "message": "", "current_version": app.get("version")},
        "settings": settings,
        "manifest": {
            "id": app_id,
            "name": app.get("name", app_id),
            "description": {"en": app.get("description", "")},
            "version": app.get("version", "-"),
            "packaging_format": 2,
            "integration": {"yunohost": ">= 12.0.9", "helpers_version": "2.1"},
            "doc": {},
            "notifications": {},
        },
        "from_catalog": {},
        "logo": None,
        "is_webapp": is_webapp,
        "is_default": False,
        "supports_change_url": is_webapp,
        "supports_backup_restore": supports,
        "supports_multi_instance": False,
        "supports_config_panel": False,
        "supports_purge": True,
        "permissions": {
            f"{app_id}.main": {
                "url": "/",
                "allowed": ["admins"],
                "auth_header": True,
                "show_tile": True,
                "label": app.get("name", app_id),
            }
        },
        "label": app.get("name", app_id),
    }


def hook_list(ctx: Context, *, action: str, list_by: str = "name", show_info: bool = False) -> Any:
    """`{"hooks": [...]}` of an action's hooks (order arbitrary on a real server)."""
    if action == "backup":
        found = [
            (part.priority, part.name, part.backup_hook_path)
            for part in backup_parts(ctx.state).values()
        ]
    elif action == "restore":
        found = [
            (hook.name.partition("-")[0], name, str(hook))
            for name, hooks in system_restore_hooks(ctx.state).items()
            for hook in hooks
        ]
    else:
        folder = ctx.state.hooks_d / action
        found = [
            (hook.name.partition("-")[0], hook.name.partition("-")[2], str(hook))
            for hook in (sorted(folder.iterdir()) if folder.is_dir() else [])
            if hook.is_file()
        ]
    if list_by == "priority":
        by_priority: dict[str, Any] = {}
        for priority, name, path in sorted(found):
            if show_info:
                by_priority.setdefault(priority, {})[name] = {"path": path}
            else:
                by_priority.setdefault(priority, []).append(name)
        return {"hooks": by_priority}
    if show_info:
        by_name: dict[str, list[dict[str, str]]] = {}
        for priority, name, path in sorted(found):
            by_name.setdefault(name, []).append({"priority": priority, "path": path})
        return {"hooks": by_name}
    return {"hooks": sorted({name for _priority, name, _path in found})}


def user_group_info(ctx: Context, *, groupname: str) -> dict[str, Any]:
    """`admins` members come from admins.json; all_users = admins, visitors = nobody."""
    admins = ctx.state.admins()
    members = {"admins": admins, "all_users": admins, "visitors": []}
    members.update({user: [user] for user in admins})  # each user's primary group
    if groupname not in members:
        raise YunohostValidationError("group_unknown", group=groupname)
    return {"members": members[groupname], "permissions": [], "mail-aliases": []}


def _port_key(port: str) -> str:
    return str(int(port)) if port.isdigit() else port


def firewall_allow(
    ctx: Context, *, protocol: str, port: str, no_upnp: bool = False, no_reload: bool = False
) -> None:
    """Open PORT for TCP, UDP or Both in firewall.json; warn if it already is open."""
    firewall = ctx.state.load_firewall()
    protocols = ["tcp", "udp"] if protocol == "Both" else [protocol.lower()]
    comment = (
        f"For {ctx.environ['YNH_APP_ID']}"
        if ctx.environ.get("YNH_APP_ID")
        else ("Manually set without comment")
    )
    for proto in protocols:
        entry = firewall.setdefault(proto, {}).setdefault(
            _port_key(port), {"open": False, "upnp": False, "comment": comment}
        )
        changed = not entry["open"] or entry["upnp"] != (not no_upnp)
        entry.update(open=True, upnp=not no_upnp)
        if not changed:
            ctx.console.warning(m18n("port_already_opened", port=port))
        ctx.state.save_firewall(firewall)
        if not no_reload:
            ctx.console.success(m18n("firewall_reloaded"))


def firewall_disallow(ctx: Context, *, protocol: str, port: str, no_reload: bool = False) -> None:
    """Close PORT in firewall.json."""
    firewall = ctx.state.load_firewall()
    protocols = ["tcp", "udp"] if protocol == "Both" else [protocol.lower()]
    for proto in protocols:
        entry = firewall.setdefault(proto, {}).get(_port_key(port))
        if entry is not None:
            entry["open"] = False
    ctx.state.save_firewall(firewall)
    if not no_reload:
        ctx.console.success(m18n("firewall_reloaded"))


def firewall_list(
    ctx: Context, *, raw: bool = False, protocol: str = "tcp", forwarded: bool = False
) -> dict[str, Any]:
    """Raw firewall.json, or `{protocol: [open (or UPnP-forwarded) ports]}`."""
    firewall = ctx.state.load_firewall()
    if raw:
        return firewall
    flag = "upnp" if forwarded else "open"
    ports: list[int | str] = [
        int(port) if port.isdigit() else port
        for port, entry in firewall.get(protocol, {}).items()
        if entry.get(flag)
    ]
    return {protocol: sorted(ports, key=str)}


def tools_versions(ctx: Context) -> dict[str, Any]:
    """`yunohost --version` / `tools versions`: YNH_SIM_VERSION for the yunohost packages."""
    version = ctx.state.version
    return {
        name: {"version": version, "repo": "stable"}
        for name in ("yunohost", "yunohost-admin", "yunohost-portal", "moulinette", "ssowat")
    }
