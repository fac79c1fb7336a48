"""Retention policies (SPEC §5): which archives of a job to keep or delete, and why; no I/O."""

from __future__ import annotations

import re
from collections.abc import Callable, Hashable, Sequence
from dataclasses import KW_ONLY, dataclass
from datetime import UTC, date, datetime, timedelta, tzinfo
from typing import Literal, NamedTuple, get_args

RetentionMode = Literal["count", "daily", "gfs"]
RETENTION_MODES: tuple[RetentionMode, ...] = get_args(RetentionMode)

# Far above any sensible policy, yet small enough that a typo ("70000") is refused rather
# than silently keeping every archive forever.
MAX_RETENTION_VALUE = 10_000

# A sign is accepted so that "-1" is reported as "too small", not as "not a number".
_WHOLE_NUMBER = re.compile(r"[+-]?[0-9]+")

REASON_LAST_RUN_FAILED = "last run failed: nothing is deleted"
REASON_NEWEST_ALWAYS_KEPT = "newest successful archive: always kept"
REASON_IN_THE_FUTURE = "dated in the future (clock skew?): never deleted"
REASON_NOT_OURS = "not created by BackupManager: never touched"
REASON_NO_JOB = "not attached to any job: never touched"
REASON_OTHER_JOB = "belongs to another job: never touched"
SKIPPED_LAST_RUN_FAILED = "the last run of this job failed: retention skipped, nothing is deleted"


class RetentionPolicyError(ValueError):
    """A retention setting is invalid; the message tells the admin what to enter instead."""


@dataclass(frozen=True)
class ArchiveRef:
    """What retention needs to know about one archive of the index."""

    name: str
    created_at: datetime
    job_id: int | None
    created_by_backupmanager: bool

    def __post_init__(self) -> None:
        _require_aware(self.created_at, what=f"created_at of archive {self.name!r}")


@dataclass(frozen=True)
class RetentionPolicy:
    """One job's retention setting; only the fields of its own mode may be non-zero."""

    mode: RetentionMode
    _: KW_ONLY
    count: int = 0
    days: int = 0
    daily: int = 0
    weekly: int = 0
    monthly: int = 0

    def __post_init__(self) -> None:
        if self.mode not in RETENTION_MODES:
            raise RetentionPolicyError(_unknown_mode_message(str(self.mode)))
        if self.mode == "count":
            _check_range(
                self.count, minimum=1, subject="Retention 'count'", verb="keep", noun="archive"
            )
            _check_unused(self, used=("count",))
        elif self.mode == "daily":
            _check_range(
                self.days, minimum=1, subject="Retention 'daily'", verb="cover", noun="day"
            )
            _check_unused(self, used=("days",))
        else:
            self._check_gfs()

    def _check_gfs(self) -> None:
        for rule, value in self._gfs_counts():
            _check_range(
                value, minimum=0, subject="Retention 'gfs'", verb="keep", noun=f"{rule} archive"
            )
        if self.daily + self.weekly + self.monthly == 0:
            raise RetentionPolicyError(
                "Retention 'gfs' must keep at least one daily, weekly or monthly archive "
                "(got 0/0/0), e.g. '7/4/3'."
            )
        _check_unused(self, used=("daily", "weekly", "monthly"))

    def _gfs_counts(self) -> tuple[tuple[str, int], ...]:
        return (("daily", self.daily), ("weekly", self.weekly), ("monthly", self.monthly))

    @classmethod
    def parse(cls, mode: str, value: str) -> RetentionPolicy:
        """Build a policy from the stored or submitted pair, e.g. ("gfs", "7/4/3")."""
        clean_mode = mode.strip().lower()
        if clean_mode == "count":
            return cls("count", count=_parse_number(value, mode="count"))
        if clean_mode == "daily":
            return cls("daily", days=_parse_number(value, mode="daily"))
        if clean_mode == "gfs":
            daily, weekly, monthly = _parse_gfs(value)
            return cls("gfs", daily=daily, weekly=weekly, monthly=monthly)
        raise RetentionPolicyError(_unknown_mode_message(mode))

    def as_value(self) -> str:
        """The value half of `parse`'s input: "7", "14" or "7/4/3"."""
        if self.mode == "count":
            return str(self.count)
        if self.mode == "daily":
            return str(self.days)
        return f"{self.daily}/{self.weekly}/{self.monthly}"

    def describe(self) -> str:
        """The policy in words, for the dashboard and the CLI."""
        if self.mode == "count":
            return (
                "keep the newest archive"
                if self.count == 1
                else f"keep the {self.count} newest archives"
            )
        if self.mode == "daily":
            days = "day" if self.days == 1 else f"{self.days} days"
            return f"keep one archive per day for the last {days}, plus today's"
        parts = [f"{value} {rule}" for rule, value in self._gfs_counts() if value > 0]
        noun = "archive" if self.daily + self.weekly + self.monthly == 1 else "archives"
        listed = parts[0] if len(parts) == 1 else f"{', '.join(parts[:-1])} and {parts[-1]}"
        return f"keep {listed} {noun}"


@dataclass(frozen=True)
class Decision:
    """The fate of one archive and the reason shown to the admin."""

    name: str
    reason: str


@dataclass(frozen=True)
class RetentionPlan:
    """Every input archive exactly once, in `keep` or `delete`, newest first in each."""

    keep: tuple[Decision, ...]
    delete: tuple[Decision, ...]
    skipped_reason: str | None


class _Verdict(NamedTuple):
    keep: bool
    reason: str


def plan_retention(
    archives: Sequence[ArchiveRef],
    policy: RetentionPolicy,
    *,
    job_id: int,
    now: datetime,
    last_run_succeeded: bool,
    tz: tzinfo = UTC,
) -> RetentionPlan:
    """Decide which archives of job `job_id` the policy deletes, with a reason for each archive.

    Candidates are the archives with this `job_id` and `created_by_backupmanager`; every other
    archive is kept with a "never touched" reason, so the whole index can be passed in and the
    preview explains everything. Safety rules, whatever the mode:

    - `last_run_succeeded=False`: nothing is deleted and `skipped_reason` is set;
    - the newest candidate is never deleted (callers pass only archives of successful runs);
    - a candidate dated after `now` (clock skew) is kept and left out of the policy, so a
      wrong clock can neither delete it nor push real archives out of the count;
    - names must be unique (ValueError otherwise): callers delete by name, and a name both
      kept and deleted would be ambiguous.

    Order: newest first, in `keep` and in `delete`; archives with the same `created_at` are
    ordered by ascending name, and the first of them counts as the newer one.

    Modes (calendar days, ISO weeks and months are taken in `tz`, the server's time zone):

    - count N: the N newest candidates are kept, the older ones deleted.
    - daily N: with D today's date in `tz`, the window is the N + 1 calendar days D-N … D
      (today plus the N days before it, whatever the time of day). In the window the newest
      candidate of each calendar day is kept and the others of that day are deleted; every
      candidate dated before D-N is deleted. An archive made at 00:01 on D-N is kept.
    - gfs daily/weekly/monthly, as `borg prune`: the rules run in the order daily, weekly,
      monthly. Each rule walks the candidates newest to oldest; at the first archive of each
      new period (day, ISO week, month) it keeps that archive unless an earlier rule already
      kept it, in which case the period is used up without counting. A rule stops once it has
      kept its count. The other archives of a period are never kept by that rule.
    """
    _require_aware(now, what="now")
    ordered = _newest_first(archives)
    _require_unique_names(ordered)
    candidates = [archive for archive in ordered if _is_candidate(archive, job_id=job_id)]
    if last_run_succeeded:
        verdicts = _judge_candidates(candidates, policy, now=now, tz=tz)
        skipped_reason = None
    else:
        verdicts = {archive.name: _Verdict(True, REASON_LAST_RUN_FAILED) for archive in candidates}
        skipped_reason = SKIPPED_LAST_RUN_FAILED
    keep: list[Decision] = []
    delete: list[Decision] = []
    for archive in ordered:
        verdict = verdicts.get(archive.name) or _Verdict(True, _foreign_reason(archive))
        (keep if verdict.keep else delete).append(Decision(archive.name, verdict.reason))
    return RetentionPlan(keep=tuple(keep), delete=tuple(delete), skipped_reason=skipped_reason)


def _judge_candidates(
    candidates: list[ArchiveRef], policy: RetentionPolicy, *, now: datetime, tz: tzinfo
) -> dict[str, _Verdict]:
    """Verdicts of a successful run's candidates, given newest first."""
    now_instant = _instant(now)
    future = [archive for archive in candidates if _instant(archive.created_at) > now_instant]
    verdicts = {archive.name: _Verdict(True, REASON_IN_THE_FUTURE) for archive in future}
    past = [archive for archive in candidates if archive.name not in verdicts]
    if not past:
        return verdicts
    if policy.mode == "count":
        judged = _judge_count(past, count=policy.count)
    elif policy.mode == "daily":
        judged = _judge_daily(past, days=policy.days, today=now.astimezone(tz).date(), tz=tz)
    else:
        judged = _judge_gfs(past, policy, tz=tz)
    if not judged[0].keep:
        # Whatever the policy says, a job always keeps its newest good archive (SPEC §5).
        judged[0] = _Verdict(True, REASON_NEWEST_ALWAYS_KEPT)
    verdicts.update((archive.name, verdict) for archive, verdict in zip(past, judged, strict=True))
    return verdicts


def _judge_count(past: list[ArchiveRef], *, count: int) -> list[_Verdict]:
    newest = "the newest archive" if count == 1 else f"the {count} newest"
    kept = _Verdict(True, "the newest archive" if count == 1 else f"one of the {count} newest")
    dropped = _Verdict(False, f"beyond {newest}")
    return [kept if index < count else dropped for index in range(len(past))]


def _judge_daily(past: list[ArchiveRef], *, days: int, today: date, tz: tzinfo) -> list[_Verdict]:
    first_day = _days_before(today, days)
    too_old = _Verdict(False, "older than 1 day" if days == 1 else f"older than {days} days")
    seen_days: set[date] = set()
    verdicts: list[_Verdict] = []
    for archive in past:
        day = archive.created_at.astimezone(tz).date()
        if day < first_day:
            verdicts.append(too_old)
        elif day in seen_days:
            verdicts.append(_Verdict(False, f"not the newest archive of {day.isoformat()}"))
        else:
            seen_days.add(day)
            verdicts.append(_Verdict(True, f"newest archive of {day.isoformat()}"))
    return verdicts


class _GfsRule(NamedTuple):
    name: str
    limit: int
    period: Callable[[date], Hashable]
    label: Callable[[date], str]


def _gfs_rules(policy: RetentionPolicy) -> tuple[_GfsRule, ...]:
    return (
        _GfsRule("daily", policy.daily, lambda day: day, lambda day: day.isoformat()),
        _GfsRule("weekly", policy.weekly, lambda day: day.isocalendar()[:2], _iso_week_label),
        _GfsRule("monthly", policy.monthly, lambda day: (day.year, day.month), _month_label),
    )


def _iso_week_label(day: date) -> str:
    year, week, _ = day.isocalendar()
    return f"{year}-W{week:02d}"


def _month_label(day: date) -> str:
    return f"{day.year}-{day.month:02d}"


def _judge_gfs(past: list[ArchiveRef], policy: RetentionPolicy, *, tz: tzinfo) -> list[_Verdict]:
    days = [archive.created_at.astimezone(tz).date() for archive in past]
    reasons: dict[int, str] = {}
    for rule in _gfs_rules(policy):
        _apply_gfs_rule(rule, days, reasons)
    summary = ", ".join(f"{rule.limit} {rule.name}" for rule in _gfs_rules(policy))
    dropped = _Verdict(False, f"not kept by any rule ({summary})")
    return [_Verdict(True, reasons[i]) if i in reasons else dropped for i in range(len(past))]


def _apply_gfs_rule(rule: _GfsRule, days: list[date], reasons: dict[int, str]) -> None:
    """Record in `reasons` (index -> reason) what one rule keeps among `days`, newest first."""
    kept = 0
    last_period: Hashable = None
    for index, day in enumerate(days):
        if kept >= rule.limit:
            return
        period = rule.period(day)
        if period == last_period:
            continue
        last_period = period
        # As borg does: an archive kept by an earlier rule still uses up its period here.
        if index not in reasons:
            reasons[index] = f"{rule.name} {rule.label(day)}"
            kept += 1


def _newest_first(archives: Sequence[ArchiveRef]) -> list[ArchiveRef]:
    # Two stable sorts: newest first, and ascending name among equal dates.
    by_name = sorted(archives, key=lambda archive: archive.name)
    return sorted(by_name, key=lambda archive: _instant(archive.created_at), reverse=True)


def _instant(moment: datetime) -> datetime:
    # Python compares two datetimes of the same tzinfo by wall clock, ignoring `fold`: in the
    # hour repeated when DST ends, that would put a later archive before an earlier one.
    return moment.astimezone(UTC)


def _is_candidate(archive: ArchiveRef, *, job_id: int) -> bool:
    return archive.created_by_backupmanager and archive.job_id == job_id


def _foreign_reason(archive: ArchiveRef) -> str:
    if not archive.created_by_backupmanager:
        return REASON_NOT_OURS
    if archive.job_id is None:
        return REASON_NO_JOB
    return REASON_OTHER_JOB


def _days_before(day: date, days: int) -> date:
    try:
        return day - timedelta(days=days)
    except OverflowError:
        return date.min


def _require_aware(moment: datetime, *, what: str) -> None:
    if moment.tzinfo is None or moment.utcoffset() is None:
        raise ValueError(f"{what} must be a timezone-aware datetime, got {moment!r}")


def _require_unique_names(archives: Sequence[ArchiveRef]) -> None:
    seen: set[str] = set()
    for archive in archives:
        if archive.name in seen:
            raise ValueError(f"archive name {archive.name!r} appears twice in the retention input")
        seen.add(archive.name)


def _unknown_mode_message(mode: str) -> str:
    return f"Unknown retention mode {mode!r}: use 'count', 'daily' or 'gfs'."


def _check_range(value: int, *, minimum: int, subject: str, verb: str, noun: str) -> None:
    if value < minimum:
        if minimum == 0:
            message = f"{subject} cannot {verb} a negative number of {noun}s (got {value})."
        else:
            message = f"{subject} must {verb} at least 1 {noun} (got {value})."
        raise RetentionPolicyError(message)
    if value > MAX_RETENTION_VALUE:
        raise RetentionPolicyError(
            f"{subject} can {verb} at most {MAX_RETENTION_VALUE} {noun}s (got {value})."
        )


def _check_unused(policy: RetentionPolicy, *, used: tuple[str, ...]) -> None:
    for field in ("count", "days", "daily", "weekly", "monthly"):
        if field not in used and getattr(policy, field) != 0:
            raise RetentionPolicyError(
                f"Retention mode {policy.mode!r} does not use {field!r}; leave it at 0."
            )


def _parse_number(value: str, *, mode: str) -> int:
    text = value.strip()
    if not _WHOLE_NUMBER.fullmatch(text):
        problem = "is empty" if not text else f"{value!r} is not a whole number"
        wanted = "number of archives to keep" if mode == "count" else "number of days"
        raise RetentionPolicyError(
            f"Retention value {problem}: for mode {mode!r}, give the {wanted}, e.g. '7'."
        )
    return _to_int(text, minimum=1)


def _to_int(text: str, *, minimum: int) -> int:
    # int() refuses strings over 4300 digits with its own message: answer in the admin's terms,
    # without echoing a page of digits back.
    if len(text.lstrip("+-").lstrip("0")) > 18:
        shown = text if len(text) <= 20 else f"{text[:20]}…"
        raise RetentionPolicyError(
            f"Retention value {shown!r} is out of range: "
            f"give a whole number from {minimum} to {MAX_RETENTION_VALUE}."
        )
    return int(text)


def _parse_gfs(value: str) -> tuple[int, int, int]:
    parts = [part.strip() for part in value.split("/")]
    if len(parts) != 3 or not all(_WHOLE_NUMBER.fullmatch(part) for part in parts):
        raise RetentionPolicyError(
            f"Retention value {value!r} for mode 'gfs' must be three whole numbers "
            "daily/weekly/monthly separated by '/', e.g. '7/4/3'."
        )
    daily, weekly, monthly = (_to_int(part, minimum=0) for part in parts)
    return daily, weekly, monthly
