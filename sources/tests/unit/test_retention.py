"""Retention policy: table cases per mode, parsing, and hypothesis checks of the safety rules."""

import sys
from collections.abc import Sequence
from datetime import UTC, datetime, timedelta, tzinfo
from pathlib import Path
from zoneinfo import ZoneInfo

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

try:
    from backupmanager.retention import (
        ArchiveRef,
        Decision,
        RetentionPlan,
        RetentionPolicy,
        RetentionPolicyError,
        plan_retention,
    )
except ImportError:  # run from the repository root without the package installed
    sys.path.insert(0, str(Path(__file__).resolve().parents[2]))
    from backupmanager.retention import (
        ArchiveRef,
        Decision,
        RetentionPlan,
        RetentionPolicy,
        RetentionPolicyError,
        plan_retention,
    )

PARIS = ZoneInfo("Europe/Paris")
JOB = 1
NOW = datetime(2026, 5, 10, 12, 0, tzinfo=UTC)  # a Sunday, ISO week 2026-W19


def utc(text: str) -> datetime:
    return datetime.fromisoformat(text).replace(tzinfo=UTC)


def ours(name: str, created_at: str | datetime, *, job_id: int = JOB) -> ArchiveRef:
    moment = utc(created_at) if isinstance(created_at, str) else created_at
    return ArchiveRef(name, moment, job_id, True)


def plan(
    archives: Sequence[ArchiveRef],
    mode: str,
    value: str,
    *,
    now: datetime = NOW,
    tz: tzinfo = UTC,
    last_run_succeeded: bool = True,
) -> RetentionPlan:
    return plan_retention(
        archives,
        RetentionPolicy.parse(mode, value),
        job_id=JOB,
        now=now,
        last_run_succeeded=last_run_succeeded,
        tz=tz,
    )


def names(decisions: Sequence[Decision]) -> list[str]:
    return [decision.name for decision in decisions]


def reasons(result: RetentionPlan) -> dict[str, str]:
    return {decision.name: decision.reason for decision in (*result.keep, *result.delete)}


# --- RetentionPolicy.parse / describe / as_value -------------------------------------------


@pytest.mark.parametrize(
    ("mode", "value", "expected", "description"),
    [
        ("count", "7", RetentionPolicy("count", count=7), "keep the 7 newest archives"),
        ("count", "1", RetentionPolicy("count", count=1), "keep the newest archive"),
        (" COUNT ", " 10000 ", RetentionPolicy("count", count=10_000), None),
        (
            "daily",
            "14",
            RetentionPolicy("daily", days=14),
            "keep one archive per day for the last 14 days, plus today's",
        ),
        (
            "gfs",
            "7/4/3",
            RetentionPolicy("gfs", daily=7, weekly=4, monthly=3),
            "keep 7 daily, 4 weekly and 3 monthly archives",
        ),
        (
            "gfs",
            " 0 / 4 / 12 ",
            RetentionPolicy("gfs", weekly=4, monthly=12),
            "keep 4 weekly and 12 monthly archives",
        ),
        ("gfs", "0/0/1", RetentionPolicy("gfs", monthly=1), "keep 1 monthly archive"),
    ],
)
def test_parse_accepts_good_values(
    mode: str, value: str, expected: RetentionPolicy, description: str | None
) -> None:
    policy = RetentionPolicy.parse(mode, value)
    assert policy == expected
    assert RetentionPolicy.parse(policy.mode, policy.as_value()) == policy
    if description is not None:
        assert policy.describe() == description


@pytest.mark.parametrize(
    ("mode", "value", "message"),
    [
        ("weekly", "7", "Unknown retention mode 'weekly': use 'count', 'daily' or 'gfs'."),
        ("", "7", "Unknown retention mode '': use 'count', 'daily' or 'gfs'."),
        (
            "count",
            "seven",
            "Retention value 'seven' is not a whole number: for mode 'count', "
            "give the number of archives to keep, e.g. '7'.",
        ),
        (
            "daily",
            "1.5",
            "Retention value '1.5' is not a whole number: for mode 'daily', "
            "give the number of days, e.g. '7'.",
        ),
        (
            "count",
            "  ",
            "Retention value is empty: for mode 'count', "
            "give the number of archives to keep, e.g. '7'.",
        ),
        ("count", "0", "Retention 'count' must keep at least 1 archive (got 0)."),
        ("count", "-2", "Retention 'count' must keep at least 1 archive (got -2)."),
        ("daily", "0", "Retention 'daily' must cover at least 1 day (got 0)."),
        ("count", "10001", "Retention 'count' can keep at most 10000 archives (got 10001)."),
        ("daily", "99999", "Retention 'daily' can cover at most 10000 days (got 99999)."),
        (
            "gfs",
            "7/4",
            "Retention value '7/4' for mode 'gfs' must be three whole numbers "
            "daily/weekly/monthly separated by '/', e.g. '7/4/3'.",
        ),
        (
            "gfs",
            "7/4/3/1",
            "Retention value '7/4/3/1' for mode 'gfs' must be three whole numbers "
            "daily/weekly/monthly separated by '/', e.g. '7/4/3'.",
        ),
        (
            "gfs",
            "7/x/3",
            "Retention value '7/x/3' for mode 'gfs' must be three whole numbers "
            "daily/weekly/monthly separated by '/', e.g. '7/4/3'.",
        ),
        (
            "gfs",
            "0/0/0",
            "Retention 'gfs' must keep at least one daily, weekly or monthly archive "
            "(got 0/0/0), e.g. '7/4/3'.",
        ),
        (
            "gfs",
            "7/-1/3",
            "Retention 'gfs' cannot keep a negative number of weekly archives (got -1).",
        ),
        (
            "gfs",
            "7/4/10001",
            "Retention 'gfs' can keep at most 10000 monthly archives (got 10001).",
        ),
    ],
)
def test_parse_refuses_bad_values_with_a_clear_message(mode: str, value: str, message: str) -> None:
    with pytest.raises(RetentionPolicyError) as raised:
        RetentionPolicy.parse(mode, value)
    assert str(raised.value) == message
    assert isinstance(raised.value, ValueError)


def test_parse_refuses_absurdly_long_numbers_without_echoing_them() -> None:
    with pytest.raises(RetentionPolicyError) as raised:
        RetentionPolicy.parse("gfs", "7/" + "9" * 5000 + "/3")
    assert str(raised.value) == (
        "Retention value '99999999999999999999…' is out of range: "
        "give a whole number from 0 to 10000."
    )


@settings(max_examples=200, deadline=None)
@given(
    st.sampled_from(["count", "daily", "gfs"]),
    st.one_of(st.text(max_size=12), st.from_regex(r"\A[ 0-9/+-]{0,12}\Z")),
)
def test_parse_either_succeeds_and_round_trips_or_raises_retention_policy_error(
    mode: str, value: str
) -> None:
    try:
        policy = RetentionPolicy.parse(mode, value)
    except RetentionPolicyError as error:
        assert str(error).endswith(".")
    else:
        assert RetentionPolicy.parse(policy.mode, policy.as_value()) == policy


def test_policy_refuses_fields_of_another_mode() -> None:
    with pytest.raises(RetentionPolicyError, match="does not use 'days'"):
        RetentionPolicy("count", count=3, days=2)


def test_archive_ref_refuses_naive_datetime() -> None:
    with pytest.raises(ValueError, match="timezone-aware"):
        ArchiveRef("a", datetime(2026, 5, 10, 3, 0), JOB, True)


# --- count mode -----------------------------------------------------------------------------

FIVE_DAYS = [ours(f"d{day}", f"2026-05-{day:02d}T03:00") for day in range(6, 11)]


@pytest.mark.parametrize(
    ("archives", "value", "keep", "delete"),
    [
        pytest.param([], "3", [], [], id="empty input"),
        pytest.param(FIVE_DAYS, "3", ["d10", "d9", "d8"], ["d7", "d6"], id="more than N"),
        pytest.param(FIVE_DAYS, "5", ["d10", "d9", "d8", "d7", "d6"], [], id="exactly N"),
        pytest.param(FIVE_DAYS[:2], "7", ["d7", "d6"], [], id="fewer than N"),
        pytest.param(FIVE_DAYS, "1", ["d10"], ["d9", "d8", "d7", "d6"], id="N is 1"),
        pytest.param(
            [ours("b", "2026-05-10T03:00"), ours("a", "2026-05-10T03:00"), ours("c", "2026-05-09")],
            "1",
            ["a"],
            ["b", "c"],
            id="same created_at ordered by name",
        ),
    ],
)
def test_count_table(
    archives: list[ArchiveRef], value: str, keep: list[str], delete: list[str]
) -> None:
    result = plan(archives, "count", value)
    assert (names(result.keep), names(result.delete)) == (keep, delete)
    assert result.skipped_reason is None


def test_count_reasons() -> None:
    result = plan(FIVE_DAYS, "count", "3")
    assert reasons(result) == {
        "d10": "one of the 3 newest",
        "d9": "one of the 3 newest",
        "d8": "one of the 3 newest",
        "d7": "beyond the 3 newest",
        "d6": "beyond the 3 newest",
    }


def test_foreign_archives_are_listed_and_never_touched() -> None:
    foreign = [
        ArchiveRef("webadmin-2026", utc("2026-01-01T10:00"), None, False),
        ArchiveRef("nextcloud-pre-upgrade1", utc("2026-05-09T23:00"), None, False),
        ArchiveRef("other-job", utc("2026-02-01T03:00"), 2, True),
        ArchiveRef("orphan", utc("2026-02-02T03:00"), None, True),
    ]
    result = plan([*foreign, *FIVE_DAYS], "count", "2")
    assert names(result.keep) == [
        "d10",
        "nextcloud-pre-upgrade1",
        "d9",
        "orphan",
        "other-job",
        "webadmin-2026",
    ]
    assert names(result.delete) == ["d8", "d7", "d6"]
    assert reasons(result)["webadmin-2026"] == "not created by BackupManager: never touched"
    assert (
        reasons(result)["nextcloud-pre-upgrade1"] == "not created by BackupManager: never touched"
    )
    assert reasons(result)["other-job"] == "belongs to another job: never touched"
    assert reasons(result)["orphan"] == "not attached to any job: never touched"


def test_failed_last_run_deletes_nothing() -> None:
    foreign = ArchiveRef("webadmin", utc("2026-01-01T10:00"), None, False)
    result = plan([foreign, *FIVE_DAYS], "count", "1", last_run_succeeded=False)
    assert result.delete == ()
    assert result.skipped_reason == (
        "the last run of this job failed: retention skipped, nothing is deleted"
    )
    assert reasons(result)["d6"] == "last run failed: nothing is deleted"
    assert reasons(result)["webadmin"] == "not created by BackupManager: never touched"


def test_archives_in_the_future_are_kept_and_not_counted() -> None:
    future = ours("future", NOW + timedelta(hours=2))
    result = plan([future, *FIVE_DAYS], "count", "2")
    assert names(result.keep) == ["future", "d10", "d9"]
    assert reasons(result)["future"] == "dated in the future (clock skew?): never deleted"


def test_duplicate_names_are_refused() -> None:
    with pytest.raises(ValueError, match="appears twice"):
        plan([ours("a", "2026-05-09T03:00"), ours("a", "2026-05-10T03:00")], "count", "3")


def test_naive_now_is_refused() -> None:
    with pytest.raises(ValueError, match="now must be a timezone-aware"):
        plan(FIVE_DAYS, "count", "3", now=datetime(2026, 5, 10, 12, 0))


# --- daily mode -----------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("archives", "value", "now", "keep", "delete"),
    [
        pytest.param([], "7", NOW, [], [], id="empty input"),
        pytest.param(
            [
                ours("today-late", "2026-05-10T11:00"),
                ours("today-early", "2026-05-10T01:00"),
                ours("d9", "2026-05-09T03:00"),
                ours("d8-00h00", "2026-05-08T00:00"),
                ours("d7-23h59", "2026-05-07T23:59:59"),
            ],
            "2",
            NOW,
            ["today-late", "d9", "d8-00h00"],
            ["today-early", "d7-23h59"],
            id="several per day, D-N kept, D-N-1 deleted",
        ),
        pytest.param(
            [
                ours("d10", "2026-05-10T03:00"),
                ours("d5", "2026-05-05T03:00"),
                ours("d1", "2026-04-01"),
            ],
            "7",
            NOW,
            ["d10", "d5"],
            ["d1"],
            id="gaps of days",
        ),
        pytest.param(
            [ours("d8", "2026-05-08T00:01"), ours("d7", "2026-05-07T23:59")],
            "2",
            utc("2026-05-10T00:05"),
            ["d8"],
            ["d7"],
            id="calendar days, not 24-hour periods",
        ),
        pytest.param(
            [ours("yesterday", "2026-05-09T03:00")],
            "1",
            NOW,
            ["yesterday"],
            [],
            id="no archive today",
        ),
        pytest.param(
            [ours("old2", "2026-04-02T03:00"), ours("old1", "2026-04-01T03:00")],
            "7",
            NOW,
            ["old2"],
            ["old1"],
            id="all older than the window: newest still kept",
        ),
    ],
)
def test_daily_table(
    archives: list[ArchiveRef], value: str, now: datetime, keep: list[str], delete: list[str]
) -> None:
    result = plan(archives, "daily", value, now=now)
    assert (names(result.keep), names(result.delete)) == (keep, delete)


def test_daily_reasons() -> None:
    archives = [
        ours("today-late", "2026-05-10T11:00"),
        ours("today-early", "2026-05-10T01:00"),
        ours("d8", "2026-05-08T03:00"),
        ours("d1", "2026-05-01T03:00"),
    ]
    assert reasons(plan(archives, "daily", "2")) == {
        "today-late": "newest archive of 2026-05-10",
        "today-early": "not the newest archive of 2026-05-10",
        "d8": "newest archive of 2026-05-08",
        "d1": "older than 2 days",
    }
    old = [ours("old2", "2026-04-02T03:00"), ours("old1", "2026-04-01T03:00")]
    assert reasons(plan(old, "daily", "14")) == {
        "old2": "newest successful archive: always kept",
        "old1": "older than 14 days",
    }


def test_daily_uses_the_server_time_zone_across_the_spring_dst_change() -> None:
    # Paris moved from UTC+1 to UTC+2 at 2026-03-29 02:00 local time.
    now = datetime(2026, 3, 30, 10, 0, tzinfo=PARIS)
    archives = [
        ours("today", datetime(2026, 3, 30, 3, 0, tzinfo=PARIS)),
        ours("sunday-00h30", utc("2026-03-28T23:30")),  # 00:30 on Sunday 29 in Paris
        ours("saturday-23h30", utc("2026-03-28T22:30")),  # 23:30 on Saturday 28 in Paris
    ]
    in_paris = plan(archives, "daily", "1", now=now, tz=PARIS)
    assert names(in_paris.keep) == ["today", "sunday-00h30"]
    assert reasons(in_paris)["sunday-00h30"] == "newest archive of 2026-03-29"
    assert names(in_paris.delete) == ["saturday-23h30"]
    # The same archives judged in UTC both fall on Saturday 28, outside the window.
    in_utc = plan(archives, "daily", "1", now=now, tz=UTC)
    assert names(in_utc.delete) == ["sunday-00h30", "saturday-23h30"]


def test_daily_repeated_hour_of_the_autumn_dst_change_is_one_day() -> None:
    # 02:30 happens twice in Paris on 2026-10-25: first in summer time, then in winter time.
    first = ours("first-02h30", datetime(2026, 10, 25, 2, 30, tzinfo=PARIS))
    second = ours("second-02h30", datetime(2026, 10, 25, 2, 30, fold=1, tzinfo=PARIS))
    before = ours("d24", datetime(2026, 10, 24, 23, 59, tzinfo=PARIS))
    now = datetime(2026, 10, 25, 9, 0, tzinfo=PARIS)
    result = plan([first, before, second], "daily", "1", now=now, tz=PARIS)
    assert names(result.keep) == ["second-02h30", "d24"]
    assert names(result.delete) == ["first-02h30"]
    assert reasons(result)["first-02h30"] == "not the newest archive of 2026-10-25"


# --- gfs mode -------------------------------------------------------------------------------

# Hand-computed with borg prune's rules for --keep-daily 3 --keep-weekly 2 --keep-monthly 2:
# daily keeps 05-10, 05-09, 05-08; weekly: W19 is used up by 05-10 (already kept, not
# counted), then W18 -> 05-03 and W17 -> 04-26; monthly: May is used up by 05-10, April by
# 04-26 (kept by weekly, not counted), then March -> 03-31 and February -> 02-14.
GFS_SERIES = [
    ("2026-05-10", "daily 2026-05-10"),
    ("2026-05-09", "daily 2026-05-09"),
    ("2026-05-08", "daily 2026-05-08"),
    ("2026-05-07", None),
    ("2026-05-03", "weekly 2026-W18"),
    ("2026-05-01", None),
    ("2026-04-26", "weekly 2026-W17"),
    ("2026-04-15", None),
    ("2026-03-31", "monthly 2026-03"),
    ("2026-03-02", None),
    ("2026-02-14", "monthly 2026-02"),
    ("2026-01-20", None),
]


def test_gfs_matches_hand_computed_borg_prune() -> None:
    archives = [ours(day, f"{day}T03:00") for day, _ in GFS_SERIES]
    result = plan(archives, "gfs", "3/2/2")
    assert names(result.keep) == [day for day, reason in GFS_SERIES if reason]
    assert names(result.delete) == [day for day, reason in GFS_SERIES if not reason]
    expected = {
        day: reason or "not kept by any rule (3 daily, 2 weekly, 2 monthly)"
        for day, reason in GFS_SERIES
    }
    assert reasons(result) == expected


def test_gfs_weekly_keeps_the_newest_of_each_iso_week_across_new_year() -> None:
    archives = [
        ours("2026-01-04", "2026-01-04T03:00"),  # Sunday of 2026-W01
        ours("2025-12-29", "2025-12-29T03:00"),  # Monday of 2026-W01
        ours("2025-12-28", "2025-12-28T03:00"),  # Sunday of 2025-W52
        ours("2025-12-22", "2025-12-22T03:00"),  # Monday of 2025-W52
        ours("2025-12-21", "2025-12-21T03:00"),  # 2025-W51, beyond the 2 weeks
    ]
    result = plan(archives, "gfs", "0/2/0", now=utc("2026-01-05T12:00"))
    assert names(result.keep) == ["2026-01-04", "2025-12-28"]
    assert reasons(result)["2026-01-04"] == "weekly 2026-W01"
    assert reasons(result)["2025-12-28"] == "weekly 2025-W52"
    assert names(result.delete) == ["2025-12-29", "2025-12-22", "2025-12-21"]


def test_gfs_daily_rule_keeps_one_per_day_for_the_newest_days_with_archives() -> None:
    archives = [
        ours("d10-b", "2026-05-10T09:00"),
        ours("d10-a", "2026-05-10T03:00"),
        ours("d6", "2026-05-06T03:00"),  # a gap does not use up the daily count
        ours("d5", "2026-05-05T03:00"),
    ]
    result = plan(archives, "gfs", "2/0/0")
    assert names(result.keep) == ["d10-b", "d6"]
    assert names(result.delete) == ["d10-a", "d5"]


def test_gfs_monthly_uses_the_server_time_zone() -> None:
    # 2026-04-30 22:30 UTC is already May 1st in Paris.
    archives = [ours("late-april-utc", "2026-04-30T22:30"), ours("april", "2026-04-10T03:00")]
    now = utc("2026-05-02T12:00")
    in_paris = plan(archives, "gfs", "0/0/2", now=now, tz=PARIS)
    assert reasons(in_paris)["late-april-utc"] == "monthly 2026-05"
    assert names(in_paris.keep) == ["late-april-utc", "april"]
    in_utc = plan(archives, "gfs", "0/0/2", now=now, tz=UTC)
    assert names(in_utc.keep) == ["late-april-utc"]


# --- properties -----------------------------------------------------------------------------

ZONES = [UTC, PARIS, ZoneInfo("America/New_York"), ZoneInfo("Asia/Kolkata")]
START = datetime(2025, 10, 1, tzinfo=UTC)
SPAN_MINUTES = 200 * 24 * 60


@st.composite
def archive_lists(draw: st.DrawFn) -> list[ArchiveRef]:
    count = draw(st.integers(min_value=0, max_value=40))
    offsets = draw(st.lists(st.integers(0, SPAN_MINUTES), min_size=count, max_size=count))
    archives = []
    for index, offset in enumerate(offsets):
        kind = draw(st.sampled_from(["ours", "ours", "ours", "other-job", "no-job", "foreign"]))
        job_id = {"ours": JOB, "other-job": 2, "no-job": None}.get(kind)
        moment = START + timedelta(minutes=offset)
        archives.append(ArchiveRef(f"archive-{index:03d}", moment, job_id, kind != "foreign"))
    return archives


policies = st.one_of(
    st.builds(lambda n: RetentionPolicy("count", count=n), st.integers(1, 12)),
    st.builds(lambda n: RetentionPolicy("daily", days=n), st.integers(1, 30)),
    st.tuples(st.integers(0, 8), st.integers(0, 5), st.integers(0, 4))
    .filter(lambda counts: sum(counts) > 0)
    .map(lambda c: RetentionPolicy("gfs", daily=c[0], weekly=c[1], monthly=c[2])),
)
nows = st.integers(0, SPAN_MINUTES + 3 * 24 * 60).map(lambda m: START + timedelta(minutes=m))
zones = st.sampled_from(ZONES)
PROPERTY_SETTINGS = settings(max_examples=200, deadline=None)


def is_candidate(archive: ArchiveRef) -> bool:
    return archive.job_id == JOB and archive.created_by_backupmanager


def newest_first(archives: Sequence[ArchiveRef]) -> list[ArchiveRef]:
    return sorted(sorted(archives, key=lambda a: a.name), key=lambda a: a.created_at, reverse=True)


def run(
    archives: Sequence[ArchiveRef],
    policy: RetentionPolicy,
    now: datetime,
    tz: tzinfo,
    *,
    succeeded: bool = True,
) -> RetentionPlan:
    return plan_retention(
        archives, policy, job_id=JOB, now=now, last_run_succeeded=succeeded, tz=tz
    )


@PROPERTY_SETTINGS
@given(archive_lists(), policies, nows, zones)
def test_every_archive_appears_once_newest_first(
    archives: list[ArchiveRef], policy: RetentionPolicy, now: datetime, tz: tzinfo
) -> None:
    result = run(archives, policy, now, tz)
    kept, deleted = names(result.keep), names(result.delete)
    assert sorted(kept + deleted) == sorted(archive.name for archive in archives)
    assert not set(kept) & set(deleted)
    order = [archive.name for archive in newest_first(archives)]
    assert kept == [name for name in order if name in set(kept)]
    assert deleted == [name for name in order if name in set(deleted)]
    assert all(decision.reason for decision in (*result.keep, *result.delete))


@PROPERTY_SETTINGS
@given(archive_lists(), policies, nows, zones)
def test_never_deletes_the_newest_candidate_nor_foreign_archives(
    archives: list[ArchiveRef], policy: RetentionPolicy, now: datetime, tz: tzinfo
) -> None:
    deleted = set(names(run(archives, policy, now, tz).delete))
    candidates = newest_first([archive for archive in archives if is_candidate(archive)])
    if candidates:
        assert candidates[0].name not in deleted
    past = [archive for archive in candidates if archive.created_at <= now]
    if past:
        assert past[0].name not in deleted
    assert not {archive.name for archive in archives if not is_candidate(archive)} & deleted
    assert not {archive.name for archive in candidates if archive.created_at > now} & deleted


@PROPERTY_SETTINGS
@given(archive_lists(), policies, nows, zones)
def test_failed_last_run_never_deletes(
    archives: list[ArchiveRef], policy: RetentionPolicy, now: datetime, tz: tzinfo
) -> None:
    result = run(archives, policy, now, tz, succeeded=False)
    assert result.delete == ()
    assert result.skipped_reason
    assert len(result.keep) == len(archives)


@PROPERTY_SETTINGS
@given(archive_lists(), st.integers(1, 12), zones)
def test_count_keeps_min_of_n_and_candidates(
    archives: list[ArchiveRef], count: int, tz: tzinfo
) -> None:
    now = START + timedelta(minutes=SPAN_MINUTES + 1)  # after every archive
    result = run(archives, RetentionPolicy("count", count=count), now, tz)
    candidates = newest_first([archive for archive in archives if is_candidate(archive)])
    kept_candidates = [name for name in names(result.keep) if name in {a.name for a in candidates}]
    assert kept_candidates == [archive.name for archive in candidates[:count]]


@PROPERTY_SETTINGS
@given(archive_lists(), policies, nows, zones)
def test_gfs_keeps_no_more_than_its_rules_allow(
    archives: list[ArchiveRef], policy: RetentionPolicy, now: datetime, tz: tzinfo
) -> None:
    if policy.mode != "gfs":
        return
    result = run(archives, policy, now, tz)
    by_rule = [decision.reason.split(" ")[0] for decision in result.keep]
    assert by_rule.count("daily") <= policy.daily
    assert by_rule.count("weekly") <= policy.weekly
    assert by_rule.count("monthly") <= policy.monthly


@PROPERTY_SETTINGS
@given(archive_lists(), policies, nows, zones)
def test_applying_a_count_or_daily_plan_then_planning_again_deletes_nothing(
    archives: list[ArchiveRef], policy: RetentionPolicy, now: datetime, tz: tzinfo
) -> None:
    if policy.mode == "gfs":
        return
    deleted = set(names(run(archives, policy, now, tz).delete))
    remaining = [archive for archive in archives if archive.name not in deleted]
    assert run(remaining, policy, now, tz).delete == ()
