"""The job form: one parser per job kind (more kinds plug in here), errors placed by field."""

from __future__ import annotations

import json
import re
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from flask_babel import lazy_gettext as _l
from werkzeug.datastructures import MultiDict

from backupmanager import appcache
from backupmanager.jobs import job_kinds
from backupmanager.models import Job

RETENTION_MODES = ("count", "daily", "gfs")
_FIELD = re.compile(r"^[a-z_][a-z0-9_.]*$")
FIELD_ALIASES = {"config": "config", "input": "form"}


@dataclass(frozen=True)
class KindForm:
    """How the form shows and reads one job kind's own settings."""

    label: Any  # lazy translated string
    template: str  # a template under templates/job_kinds/
    read: Callable[[MultiDict[str, str]], dict[str, Any]]
    check: Callable[[dict[str, Any], appcache.Catalog | None], dict[str, str]]


def _read_ynh_app(form: MultiDict[str, str]) -> dict[str, Any]:
    return {"app_id": form.get("app_id", "").strip(), "core_only": form.get("core_only") == "on"}


def _check_ynh_app(config: dict[str, Any], catalog: appcache.Catalog | None) -> dict[str, str]:
    """The server-side check of the kind, against the worker's cached `yunohost app list`."""
    if catalog is None or not catalog.refreshed_at:
        return {}  # not known yet: the run will say if the app is missing
    apps = {app.id: app for app in catalog.apps}
    app = apps.get(config.get("app_id", ""))
    if app is None:
        return {"app_id": str(_l("Choose one of the installed apps."))}
    if not app.supports_backup_restore:
        return {"app_id": str(_l("This app has no backup script: YunoHost cannot back it up."))}
    return {}


def _read_ynh_system(form: MultiDict[str, str]) -> dict[str, Any]:
    return {"parts": sorted(set(form.getlist("parts")))}


def _check_ynh_system(config: dict[str, Any], catalog: appcache.Catalog | None) -> dict[str, str]:
    if catalog is None or not catalog.system_parts:
        return {}
    unknown = sorted(set(config.get("parts", [])) - set(catalog.system_parts))
    if unknown:
        return {"parts": str(_l("Unknown system part(s): %(parts)s", parts=", ".join(unknown)))}
    return {}


def _read_json_config(form: MultiDict[str, str]) -> dict[str, Any]:
    text = form.get("config_json", "").strip() or "{}"
    try:
        value = json.loads(text)
    except ValueError:
        return {"__invalid_json__": text}
    return value if isinstance(value, dict) else {"__invalid_json__": text}


def _check_nothing(config: dict[str, Any], catalog: appcache.Catalog | None) -> dict[str, str]:
    if "__invalid_json__" in config:
        return {"config": str(_l('Write the settings as a JSON object, e.g. {"key": "value"}.'))}
    return {}


KIND_FORMS: dict[str, KindForm] = {
    "ynh_app": KindForm(
        _l("YunoHost app"), "job_kinds/ynh_app.html", _read_ynh_app, _check_ynh_app
    ),
    "ynh_system": KindForm(
        _l("YunoHost system"), "job_kinds/ynh_system.html", _read_ynh_system, _check_ynh_system
    ),
}


def _read_database(form: MultiDict[str, str]) -> dict[str, Any]:
    """mysql / postgresql jobs (doc/databases.md): a password is never typed here, only named."""
    config: dict[str, Any] = {
        "database": form.get("database", "").strip(),
        "user": form.get("db_user", "").strip(),
        "compression": form.get("compression", "zstd"),
    }
    for key in ("host", "port", "password_secret", "drill_cron"):
        value = form.get(key, "").strip()
        if value:
            config[key] = value
    return config


for _kind, _label in (
    ("mysql", _l("MySQL / MariaDB database")),
    ("postgresql", _l("PostgreSQL database")),
):
    KIND_FORMS[_kind] = KindForm(_label, "job_kinds/database.html", _read_database, _check_nothing)
# A kind without its own fields yet is still usable: its settings as JSON.
GENERIC_FORM = KindForm(
    _l("Settings as JSON"), "job_kinds/generic.html", _read_json_config, _check_nothing
)


def kind_choices() -> list[tuple[str, str]]:
    """Every job kind the engine knows, with the form's label when it has one."""
    return [
        (name, str(KIND_FORMS[name].label) if name in KIND_FORMS else name)
        for name in sorted(job_kinds(), key=lambda name: (name not in KIND_FORMS, name))
    ]


def kind_form(type_name: str) -> KindForm:
    return KIND_FORMS.get(type_name, GENERIC_FORM)


@dataclass
class JobFormData:
    """What the form shows: the values typed (or stored) and the errors next to each field."""

    values: dict[str, Any]
    errors: dict[str, str]

    def raw_input(self) -> dict[str, Any]:
        """The service layer's input schema (the same as the CLI's and the API's)."""
        values = self.values
        return {
            "name": values["name"],
            "type": values["type"],
            "config": values["config"],
            "cron": values["cron"],
            "retention": f"{values['retention_mode']}:{values['retention_value']}",
            "enabled": values["enabled"],
            "core_only": bool(values["config"].get("core_only", False)),
        }


def read_form(form: MultiDict[str, str]) -> JobFormData:
    type_name = form.get("type", "ynh_app")
    config = kind_form(type_name).read(form)
    values = {
        "name": form.get("name", "").strip(),
        "type": type_name,
        "config": config,
        "config_json": form.get("config_json", ""),
        "cron": form.get("cron", "").strip(),
        "retention_mode": form.get("retention_mode", "count"),
        "retention_value": form.get("retention_value", "").strip(),
        "enabled": form.get("enabled") == "on",
    }
    return JobFormData(values, {})


def from_job(job: Job | None) -> JobFormData:
    if job is None:
        return JobFormData(
            {
                "name": "",
                "type": "ynh_app",
                "config": {},
                "config_json": "{}",
                "cron": "0 3 * * *",
                "retention_mode": "count",
                "retention_value": "7",
                "enabled": True,
            },
            {},
        )
    config = json.loads(job.config_json)
    return JobFormData(
        {
            "name": job.name,
            "type": job.type,
            "config": config,
            "config_json": json.dumps(config, indent=2),
            "cron": job.cron_expr,
            "retention_mode": job.retention_mode,
            "retention_value": job.retention_value,
            "enabled": job.enabled,
        },
        {},
    )


# The service layer explains refused input in English; other languages get this sentence first,
# with the English detail after it.
FIELD_HINTS = {
    "name": _l("Use 1 to 64 letters, digits, spaces, '.', '_' or '-', starting with a letter."),
    "cron": _l("This is not a valid schedule (five fields, e.g. 0 3 * * 1)."),
    "retention": _l("This retention rule is not valid."),
}


def localized(errors: dict[str, str], language: str) -> dict[str, str]:
    if language == "en":
        return errors
    return {
        field: f"{FIELD_HINTS[field]} ({text})" if field in FIELD_HINTS else text
        for field, text in errors.items()
    }


def errors_by_field(message: str) -> dict[str, str]:
    """Split an InputError ("cron: …; config: app_id: …") into {"cron": …, "app_id": …}."""
    errors: dict[str, str] = {}
    # Split only where a new "field: " starts: messages themselves may contain "; ".
    for part in re.split(r"; (?=[a-z_][a-z0-9_.]*: )", message):
        text = part.strip()
        field = "form"
        for _hop in range(2):  # "config: app_id: …" names the inner field
            key, sep, rest = text.partition(": ")
            if not sep or not _FIELD.match(key):
                break
            field, text = FIELD_ALIASES.get(key, key.rsplit(".", 1)[-1]), rest
            if key != "config":
                break
        if text.startswith("unknown job type"):
            field = "type"
        errors[field] = f"{errors[field]} {text}" if field in errors else text
    return errors
