"""galion-restore's checks before it touches anything, without a host: the script sourced
in bash with stand-ins for pgBackRest, psql, systemctl, df and the other programs it runs
(tests/stand_ins.py), a scratch data directory and dump directory. A refused restore
exits non-zero and leaves all of it as it was: the data directory where it was with its
files, PostgreSQL never stopped, nothing restored, created, renamed or dropped. The last
two tests are the control: with every check passing it does go on to touch things.

Each check broken on purpose makes its refusal test fail (MUTANTS, checked by
test_a_check_broken_on_purpose_lets_the_restore_through on an edited copy):
- the cluster checks not called: every cluster refusal;
- the backup-before-target check dropped: target before the oldest backup (the
  refusal becomes a traceback, not a reason);
- the disk check dropped: not enough room for the biggest backup;
- the wait for the current WAL taken as done: the WAL that never reaches the repository;
- the primary check of a database restore dropped: a database restore on a standby;
- the readability check of the dump dropped: an unreadable dump;
- the disk check of a database restore dropped: no room for the database.
(The "repository does not answer" branch only words the refusal: without it the empty
answer is refused as unreadable, so no outcome tells them apart.)
"""

import json
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import pytest

from tests import stand_ins

RESTORE = Path(__file__).resolve().parents[2] / "files" / "backups" / "galion-restore"

TOOLS = (
    "bash sh awk sed head tail stat cut mkdir mv cp rm tr timeout cat grep basename dirname "
    "ls seq mktemp wc find sort python3 date"
).split()

# The programs the checks ask; what they answer is set through files in $STUB.
STUBS = {
    "runuser": 'while [ "$1" != -- ]; do shift; done\nshift\nexec "$@"\n',
    "pgbackrest": r"""
case " $* " in
    *" info "*)
        [ ! -e "$STUB/repo-down" ] || { echo "ERROR: [039]: HTTP request failed"; exit 1; }
        cat "$STUB/info.json" ;;
    *" archive-get "*) [ -e "$STUB/wal-archived" ] ;;
    *" restore "*) echo "ERROR: [055]: the stand-in restores nothing"; exit 1 ;;
esac
""",
    "psql": r"""
case "$*" in
    *pg_is_in_recovery*) cat "$STUB/in-recovery" ;;
    *archive_mode*) echo on ;;
    *pg_walfile_name*) echo 000000010000000000000007 ;;
    *pg_get_userbyid*) echo galion ;;
    *"select 1 from pg_database"*) echo 1 ;;
esac
""",
    "pg_ctlcluster": "",
    "systemctl": "",
    "pkill": "",
    "createdb": "",
    "install": 'mkdir -p "${*: -1}"\n',
    "pg_restore": r"""
case " $* " in
    *" --list "*) [ ! -e "$STUB/dump-unreadable" ] ;;
    *) exit 1 ;;  # the control: a restore that fails halfway
esac
""",
    "df": 'echo "Filesystem 1M-blocks Used Available Capacity Mounted on"\n'
    'echo "/dev/vda1 100000 1 $(cat "$STUB/free-mb") 1% /"\n',
    "sleep": "",
}

HOUR = 3600
MB = 2**20


class Rig:
    """A database host as far as galion-restore's checks see it: one backup of 2 GB
    that ended two days ago in the repository, 50 GB free, a primary whose WAL reaches
    the repository, one readable local dump of galion."""

    def __init__(self, root: Path, script: str | None = None):
        self.root = root
        self.stub = root / "stub"
        stand_ins.install(root, STUBS, TOOLS)
        self.script = root / "galion-restore"
        self.script.write_text(script if script is not None else RESTORE.read_text())
        self.data = root / "cluster" / "main"
        self.data.mkdir(parents=True)
        (self.data / "PG_VERSION").write_text("15\n")
        (self.data / "base").mkdir()
        self.dumps = root / "dumps"
        (self.dumps / "galion").mkdir(parents=True)
        (self.dumps / "galion" / "galion-20261201T023000Z.dump").write_bytes(b"x" * 4096)
        self.backups()
        self.free_mb(50_000)
        (self.stub / "in-recovery").write_text("f\n")
        (self.stub / "wal-archived").write_text("")

    # The host's state.
    def backups(self, stop_hours_ago=48, size=2048 * MB, status=0, none=False) -> None:
        stop = time.time() - stop_hours_ago * HOUR
        stanza = {"status": {"code": status, "message": "ok" if status == 0 else "missing"}}
        stanza["backup"] = (
            []
            if none
            else [{"timestamp": {"start": stop - 600, "stop": stop}, "info": {"size": size}}]
        )
        (self.stub / "info.json").write_text(json.dumps([stanza]))

    def free_mb(self, mb: int) -> None:
        (self.stub / "free-mb").write_text(f"{mb}\n")

    def flag(self, name: str) -> None:
        (self.stub / name).write_text("")

    def unflag(self, name: str) -> None:
        (self.stub / name).unlink()

    # A run.
    def run(self, *args: str):
        settings = f"""
load_settings() {{
    STANZA=main PG_VERSION=15 PG_PORT=5432 FREE_SPACE_FLOOR_MB=1024
    RESTORE_WAL_WAIT=4 RESTORE_REPLAY_WAIT=5
    DUMP_DIR={self.dumps} OFFSITE_DUMPS=offsite:galion-backups/dumps
    ts=20261207T120000Z bin={self.root}/pgbin unit=postgresql@15-main
    data={self.data} log={self.root}/postgresql.log
}}"""
        env = {"PATH": stand_ins.path(self.root), "STUB": str(self.stub), "LANG": "C.UTF-8"}
        return stand_ins.run(self.script, args, env, before_main=settings)

    def files(self) -> list[str]:
        """Every path under the scratch cluster and dump directories."""
        return sorted(
            str(p.relative_to(self.root))
            for top in (self.data.parent, self.dumps)
            for p in top.rglob("*")
        )

    def calls(self) -> list[str]:
        return stand_ins.calls(self.root)


@pytest.fixture
def rig(tmp_path):
    return Rig(tmp_path)


# What "touched" means: PostgreSQL stopped or started, a restore begun, a database
# created, renamed, dropped or cut off.
TOUCHING = (
    "systemctl ",
    "pkill ",
    "install ",
    "createdb ",
)


def assert_refused_untouched(rig: Rig, *args: str) -> None:
    before = rig.files()
    run = rig.run(*args)
    assert run.returncode != 0, run.stdout
    # It says why, itself (not a traceback): its last line names the script.
    assert (run.stderr.splitlines() or [""])[-1].startswith("galion-restore: "), run.stderr
    assert rig.files() == before
    touched = [
        c
        for c in rig.calls()
        if c.startswith(TOUCHING)
        or (c.startswith("pgbackrest ") and " restore" in c)
        or (c.startswith("pg_restore ") and "--list" not in c)
        or (c.startswith("psql ") and any(w in c for w in ("ALTER", "DROP", "terminate")))
    ]
    assert touched == []


def iso(seconds_from_now: float) -> str:
    return time.strftime("%Y-%m-%d %H:%M:%S+00", time.gmtime(time.time() + seconds_from_now))


# Cluster restores: each refusal, set up on the otherwise passing host.


def repository_does_not_answer(rig: Rig):
    rig.flag("repo-down")
    assert_refused_untouched(rig, "cluster", "--repo", "2")


def repository_reports_an_error(rig: Rig):
    rig.backups(status=1)
    assert_refused_untouched(rig, "cluster", "--repo", "2")


def repository_holds_no_backup(rig: Rig):
    rig.backups(none=True)
    assert_refused_untouched(rig, "cluster", "--repo", "2")


def target_before_the_oldest_backup(rig: Rig):
    assert_refused_untouched(rig, "cluster", "--repo", "2", "--target", iso(-72 * HOUR))


def target_in_the_future(rig: Rig):
    assert_refused_untouched(rig, "cluster", "--repo", "1", "--target", iso(+HOUR))


def not_enough_room_for_the_backup(rig: Rig):
    rig.free_mb(2048 + 1024 - 1)  # the backup plus the floor, less one MB
    assert_refused_untouched(rig, "cluster", "--repo", "2")


def current_wal_never_reaches_the_repository(rig: Rig):
    """restore=latest on a running primary: what is committed must be archived first."""
    rig.unflag("wal-archived")
    assert_refused_untouched(rig, "cluster", "--repo", "2")


def unknown_option(rig: Rig):
    assert_refused_untouched(rig, "cluster", "--repository", "2")


# Database restores.


def cluster_option_without_offsite(rig: Rig):
    assert_refused_untouched(rig, "database", "galion", "--cluster", "7312345678901234567")


def cluster_option_not_digits(rig: Rig):
    assert_refused_untouched(rig, "database", "galion", "--from", "offsite", "--cluster", "7312;id")


def database_restore_on_a_standby(rig: Rig):
    (rig.stub / "in-recovery").write_text("t\n")
    assert_refused_untouched(rig, "database", "galion")


def no_dump_of_the_database(rig: Rig):
    assert_refused_untouched(rig, "database", "galion_studio")


def unreadable_dump(rig: Rig):
    rig.flag("dump-unreadable")
    assert_refused_untouched(rig, "database", "galion")


def not_enough_room_for_the_database(rig: Rig):
    rig.free_mb(1024 - 1)  # the floor alone is not there
    assert_refused_untouched(rig, "database", "galion")


REFUSALS = [
    repository_does_not_answer,
    repository_reports_an_error,
    repository_holds_no_backup,
    target_before_the_oldest_backup,
    target_in_the_future,
    not_enough_room_for_the_backup,
    current_wal_never_reaches_the_repository,
    unknown_option,
    cluster_option_without_offsite,
    cluster_option_not_digits,
    database_restore_on_a_standby,
    no_dump_of_the_database,
    unreadable_dump,
    not_enough_room_for_the_database,
]


@pytest.mark.parametrize("refusal", REFUSALS, ids=lambda f: f.__name__)
def test_a_restore_that_cannot_be_checked_is_refused_and_touches_nothing(rig, refusal):
    refusal(rig)


def test_with_the_checks_passed_a_cluster_restore_goes_on_and_puts_the_data_back(rig):
    """The control: PostgreSQL is stopped and the data directory moved aside; the
    stand-in pgBackRest restores nothing, so the previous data directory comes back."""
    before = rig.files()
    run = rig.run("cluster", "--repo", "2", "--target", iso(-24 * HOUR))
    assert run.returncode == 1
    calls = rig.calls()
    assert "systemctl stop postgresql@15-main" in calls
    assert [c for c in calls if c.startswith("pgbackrest ") and c.endswith(" restore")]
    assert "systemctl start postgresql@15-main" in calls
    assert rig.files() == before


def test_with_the_checks_passed_a_database_restore_goes_on_beside_the_live_one(rig):
    """The control: a new database is created for the dump; the stand-in pg_restore
    fails, so it is dropped and the live one was never renamed."""
    run = rig.run("database", "galion")
    assert run.returncode == 1
    calls = rig.calls()
    assert [c for c in calls if c.startswith("createdb ") and "galion_restore_" in c]
    assert [c for c in calls if c.startswith("psql ") and "DROP DATABASE" in c]
    assert not [c for c in calls if c.startswith("psql ") and "RENAME" in c]


# Checks broken on purpose: (what, the script's text, its replacement, the refusal that
# must then fail). Each text must occur exactly once in the script.
MUTANTS = [
    (
        "cluster checks not called",
        '    check_cluster_restore "$repo" "$target"\n',
        "",
        target_before_the_oldest_backup,
    ),
    (
        "backup-before-target dropped",
        "    if when < first:",
        "    if False:",
        target_before_the_oldest_backup,
    ),
    (
        "disk check dropped",
        "if free_mb < needed_mb + floor_mb:",
        "if False:",
        not_enough_room_for_the_backup,
    ),
    (
        "WAL taken as archived",
        'if runuser -u postgres -- timeout 20 pgbackrest --stanza="$STANZA" --repo="$1"',
        'if true || runuser -u postgres -- timeout 20 pgbackrest --stanza="$STANZA" --repo="$1"',
        current_wal_never_reaches_the_repository,
    ),
    (
        "primary check dropped",
        '[ "$(in_recovery)" = "f" ] || die "PostgreSQL is not running as a primary"',
        "true",
        database_restore_on_a_standby,
    ),
    (
        "dump readability unchecked",
        'if ! runuser -u postgres -- pg_restore --list "$dump" >/dev/null; then',
        "if false; then",
        unreadable_dump,
    ),
    (
        "database disk check dropped",
        '[ "$(free_mb "$data")" -ge "$((size + FREE_SPACE_FLOOR_MB))" ]',
        "true",
        not_enough_room_for_the_database,
    ),
]


def test_a_check_broken_on_purpose_lets_the_restore_through(tmp_path):
    """Each mutant's refusal, run on the edited copy, must fail (its test above passes on
    the script as written)."""
    script = RESTORE.read_text()

    def survives(index: int, what: str, text: str, replacement: str, refusal) -> bool:
        assert script.count(text) == 1, f"{what}: the text to break is not in the script once"
        assert refusal in REFUSALS, f"{what}: {refusal.__name__} is not a test of its own"
        try:
            refusal(Rig(tmp_path / str(index), script.replace(text, replacement)))
        except AssertionError:
            return False
        return True

    with ThreadPoolExecutor(max_workers=4) as pool:
        survived = pool.map(lambda m: (m[1][0], survives(m[0], *m[1])), enumerate(MUTANTS))
        assert [what for what, alive in survived if alive] == []
