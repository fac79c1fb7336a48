"""English and French (Flask-Babel), chosen from the browser; dates, ages, sizes for templates."""

from __future__ import annotations

import re
from datetime import datetime, timedelta
from pathlib import Path

from flask import Flask, request
from flask_babel import Babel, format_datetime, format_decimal, format_timedelta, get_locale
from flask_babel import gettext as _

from backupmanager import cron
from backupmanager.web import known_messages

LANGUAGES = ("en", "fr")
TRANSLATIONS = Path(__file__).resolve().parents[1] / "translations"
CRON_LOCALES = {"en": "en_US", "fr": "fr_FR"}
# cron_descriptor translates its sentences but takes day and month names from Python's C locale.
FRENCH_NAMES = {
    "Monday": "lundi",
    "Tuesday": "mardi",
    "Wednesday": "mercredi",
    "Thursday": "jeudi",
    "Friday": "vendredi",
    "Saturday": "samedi",
    "Sunday": "dimanche",
    "January": "janvier",
    "February": "février",
    "March": "mars",
    "April": "avril",
    "May": "mai",
    "June": "juin",
    "July": "juillet",
    "August": "août",
    "September": "septembre",
    "October": "octobre",
    "November": "novembre",
    "December": "décembre",
}
_UNITS: dict[str, tuple[str, ...]] = {}
_FRENCH_PATTERN = re.compile(r"\b(" + "|".join(FRENCH_NAMES) + r")\b")


def language() -> str:
    locale = get_locale()
    return locale.language if locale is not None else "en"


def _select_locale() -> str:
    return request.accept_languages.best_match(LANGUAGES) or "en"


def schedule_words(expression: str) -> str:
    """A cron expression in words, in the page's language ("At 03:00, only on Monday")."""
    lang = language()
    try:
        text = cron.describe(expression, locale_code=CRON_LOCALES.get(lang, "en_US"))
    except ValueError:
        return expression
    if lang == "fr":
        text = _FRENCH_PATTERN.sub(lambda match: FRENCH_NAMES[match[1]], text)
    return text


def when(moment: datetime | str | None, format: str = "short") -> str:
    """A date and time in the instance's zone and the page's language."""
    if moment is None or moment == "":
        return "—"
    if isinstance(moment, str):
        moment = datetime.fromisoformat(moment)
    return str(format_datetime(moment, format))


def age(moment: datetime | str | None, *, now: datetime) -> str:
    """'3 hours ago' / 'in 5 minutes' / 'il y a 3 heures'."""
    if moment is None or moment == "":
        return "—"
    if isinstance(moment, str):
        moment = datetime.fromisoformat(moment)
    return str(format_timedelta(moment - now, add_direction=True, threshold=1.0))


def duration(seconds: float | None) -> str:
    """A run's duration: '42 s', '3 min 05 s', '1 h 02 min'."""
    if seconds is None:
        return "—"
    total = round(seconds)
    if total < 60:
        return str(_("%(s)d s", s=total))
    minutes, secs = divmod(total, 60)
    if minutes < 60:
        return str(_("%(m)d min %(s)02d s", m=minutes, s=secs))
    hours, minutes = divmod(minutes, 60)
    return str(_("%(h)d h %(m)02d min", h=hours, m=minutes))


def size(value: int | None) -> str:
    """Bytes for people: '512 B', '3.4 MB' ('3,4 Mo' in French)."""
    if value is None:
        return "—"
    lang = language()
    units = _UNITS.get(lang)
    if units is None:  # translated once per language: pages show hundreds of sizes
        units = _UNITS[lang] = (_("B"), _("KB"), _("MB"), _("GB"), _("TB"))
    amount = float(value)
    for unit in units:
        if abs(amount) < 1024 or unit == units[-1]:
            digits = "#,##0" if unit == units[0] else "#,##0.0"
            return f"{format_decimal(amount, format=digits)}\u00a0{unit}"
        amount /= 1024
    return str(value)  # not reached


def seconds_between(start: datetime | None, end: datetime | None) -> float | None:
    if start is None or end is None:
        return None
    return (end - start) / timedelta(seconds=1)


def init_app(app: Flask) -> None:
    from backupmanager.web import state

    app.config["BABEL_TRANSLATION_DIRECTORIES"] = str(TRANSLATIONS)
    Babel(app, locale_selector=_select_locale, timezone_selector=lambda: state().timezone)
    app.jinja_env.filters.update(when=when, size=size, duration=duration, schedule=schedule_words)
    app.jinja_env.filters["localized"] = known_messages.localized
    app.jinja_env.globals.update(language=language, age=age, seconds_between=seconds_between)
