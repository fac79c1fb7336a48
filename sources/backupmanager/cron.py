"""Cron expressions: validation, standard-cron day-of-week semantics on APScheduler 3, words, next runs."""

from __future__ import annotations

import functools
import re
from datetime import UTC, datetime, timedelta, tzinfo

from apscheduler.triggers.base import BaseTrigger
from apscheduler.triggers.combining import OrTrigger
from apscheduler.triggers.cron import CronTrigger

DAY_NAMES = ("sun", "mon", "tue", "wed", "thu", "fri", "sat")
_DOW_ITEM = re.compile(r"^(?P<range>\*|[a-z0-9]+(?:-[a-z0-9]+)?)(?:/(?P<step>\d+))?$")


class CronError(ValueError):
    """A cron expression that cannot be used; the message says what is wrong and gives an example."""


def _day_number(token: str) -> int:
    if token in DAY_NAMES:
        return DAY_NAMES.index(token)
    if token.isdigit() and 0 <= int(token) <= 7:
        return int(token) % 7  # 0 and 7 are both Sunday in standard cron
    raise CronError(f"'{token}' is not a day of the week (use 0-7 or sun-sat)")


def _expand_day_of_week(field: str) -> set[int]:
    days: set[int] = set()
    for item in field.lower().split(","):
        match = _DOW_ITEM.match(item)
        if not match:
            raise CronError(f"'{item}' is not a valid day-of-week item")
        step = int(match["step"] or 1)
        if step < 1:
            raise CronError("a step must be 1 or more")
        if match["range"] == "*":
            first, last = 0, 6
        elif "-" in match["range"]:
            start, end = match["range"].split("-")
            first, last = _day_number(start), _day_number(end)
            if end == "7":
                last = 7
            if last < first:
                raise CronError(f"'{item}': a range must go forward, like 1-5")
        else:
            first = last = _day_number(match["range"])
        days.update(day % 7 for day in range(first, last + 1, step))
    return days


def day_of_week_for_apscheduler(field: str) -> str:
    """Standard cron numbers Sunday 0 (or 7); APScheduler 3 numbers Monday 0: translate to names."""
    if field == "*":
        return "*"
    days = _expand_day_of_week(field)
    return ",".join(DAY_NAMES[day] for day in sorted(days))


def build_trigger(expression: str, timezone: tzinfo) -> BaseTrigger:
    """A trigger that fires exactly when standard cron (Vixie/Debian cron) would."""
    fields = expression.split()
    if len(fields) != 5:
        raise CronError(
            f"'{expression}' has {len(fields)} fields; a schedule needs 5: "
            "minute hour day-of-month month day-of-week, e.g. '0 3 * * 1' (Mondays at 03:00)"
        )
    minute, hour, day, month, dow = fields
    try:
        dow_names = day_of_week_for_apscheduler(dow)

        def cron(day_field: str, dow_field: str) -> CronTrigger:
            return CronTrigger(
                minute=minute,
                hour=hour,
                day=day_field,
                month=month,
                day_of_week=dow_field,
                timezone=timezone,
            )

        # Standard cron runs when EITHER day field matches if both are restricted.
        if day != "*" and dow != "*":
            return OrTrigger([cron(day, "*"), cron("*", dow_names)])
        return cron(day, dow_names)
    except CronError:
        raise
    except ValueError as error:
        raise CronError(f"'{expression}' is not a valid schedule: {error}") from error


def validate(expression: str) -> str:
    """The expression with its spacing normalized; raises CronError when it cannot be used."""
    normalized = " ".join(expression.split())
    build_trigger(normalized, UTC)
    return normalized


def _first_fire_after(trigger: BaseTrigger, moment: datetime) -> datetime | None:
    fire: datetime | None = trigger.get_next_fire_time(None, moment)
    if fire is not None and fire <= moment:  # APScheduler includes `moment` itself when it matches
        fire = trigger.get_next_fire_time(fire, fire.replace(microsecond=0) + timedelta(seconds=1))
    return fire


@functools.lru_cache(maxsize=4096)
def _cached_trigger(expression: str, timezone: tzinfo) -> BaseTrigger:
    # Triggers are immutable; the dashboard asks for hundreds of jobs' next runs per page.
    return build_trigger(expression, timezone)


def next_run_after(expression: str, timezone: tzinfo, moment: datetime) -> datetime | None:
    """The first slot strictly after `moment`."""
    return _first_fire_after(_cached_trigger(expression, timezone), moment)


def next_runs(expression: str, timezone: tzinfo, after: datetime, count: int = 5) -> list[datetime]:
    """The next `count` slots strictly after `after` (the job form shows five)."""
    trigger = build_trigger(expression, timezone)
    runs: list[datetime] = []
    moment: datetime | None = after
    while moment is not None and len(runs) < count:
        moment = _first_fire_after(trigger, moment)
        if moment is not None:
            runs.append(moment)
    return runs


@functools.lru_cache(maxsize=4096)
def describe(expression: str, *, locale_code: str = "en_US") -> str:
    """The schedule in words, e.g. 'At 03:00, only on Monday' (cached: dashboards list many jobs)."""
    from cron_descriptor import Options, get_description

    options = Options()
    options.use_24hour_time_format = True
    options.verbose = False
    options.locale_code = locale_code
    text: str = get_description(expression, options)
    return text
