"""galion-rollout's state machine without a host: the script sourced in bash with
stand-ins for docker, curl, nginx and systemctl (tests/rollout_rig.py). Each scenario
checks what the script promises: its exit code, which container is left and where nginx
sends the traffic, the servers file, the marker of the finished rollout, the calls made.

Each branch broken on purpose makes its scenario fail (MUTANTS, checked by
test_a_branch_broken_on_purpose_fails_its_scenario on an edited copy of the script):
- no health gate (the wait is skipped): never_healthy finds nginx switched to it;
- rollback inverted (a good watch rolls back, a bad one does not): fails_after_cutover;
- 5xx not counted (`st >= 500` made `st >= 600`): fails_after_cutover;
- health not checked in the watch: fades_after_cutover;
- no resume (a live new container beside a running old one counts as finished): the
  resumed watch of a failing version (resumed_rollout_still_rolls_back);
- the leftover of a run killed before cutover kept: resume_before_cutover (name taken);
- the marker not written when already serving: already_serving;
- nginx -t skipped before the reload: nginx_refuses (nginx keeps the old config, the
  old container is drained while nginx still sends it everything);
- the refused servers file not put back: nginx_refuses;
- the rollback aimed at the slot's computed port, not where the old one listens:
  rollback_after_a_changed_port_pair;
- the live slot found only by the current port pair: rollback_after_a_changed_port_pair;
- status ignoring the marker, the leftovers or the hash: status_without_marker,
  status_with_the_old_container_left, status_of_a_container_not_made_from_the_settings.
"""

from concurrent.futures import ThreadPoolExecutor

import pytest

from tests.rollout_rig import ROLLOUT, SERVICE, Rig

OLD, NEW = "oldhash", "newhash"  # config hashes: the running version's, the settings'


@pytest.fixture
def rig(tmp_path):
    return Rig(tmp_path)


def assert_serves(rig: Rig, image: str, hash: str) -> str:
    """`image` serves alone: the one container of the service, running, with `hash`; the
    servers file points at it and nginx sends it the traffic. Returns its name."""
    containers = rig.containers()
    assert len(containers) == 1, containers
    (name, (state, its_hash, address, its_image)), *_ = containers.items()
    assert (state, its_hash, its_image) == ("running", hash, image), containers
    assert rig.servers_target() == address
    assert rig.nginx_serves() == address
    return name


def old_version_serves(rig: Rig) -> None:
    """Before each update: app:v1 (hash OLD) in slot a serves, its rollout finished."""
    rig.image("app:v1")
    rig.container("a", "running", OLD, 8001, "app:v1")
    rig.nginx_points_at(8001)
    rig.finished(OLD, "a")


# Scenarios: each sets the host up, runs the script and asserts.


def fresh_start(rig: Rig):
    """First rollout: the servers file the app proxy wrote (the plan port, where nothing
    listens yet), no container, no marker."""
    rig.image("app:v2")
    rig.nginx_points_at(8001)
    run = rig.run(SERVICE)
    assert run.returncode == 0, run.stderr
    name = assert_serves(rig, "app:v2", NEW)
    assert rig.finished_rollout() == f"{NEW} {name}\n"


def fresh_start_without_servers_file(rig: Rig):
    rig.image("app:v2")
    run = rig.run(SERVICE)
    assert run.returncode == 0, run.stderr
    name = assert_serves(rig, "app:v2", NEW)
    assert rig.finished_rollout() == f"{NEW} {name}\n"


def update(rig: Rig):
    """The everyday case: v1 serves, v2 replaces it after its watch; v1 drained."""
    old_version_serves(rig)
    rig.image("app:v2")
    run = rig.run(SERVICE)
    assert run.returncode == 0, run.stderr
    name = assert_serves(rig, "app:v2", NEW)
    assert rig.finished_rollout() == f"{NEW} {name}\n"
    assert f"docker stop -t 10 {SERVICE}-a" in rig.calls()  # drained, not killed


def already_serving(rig: Rig):
    """Killed after the old one went, before the marker: a stopped leftover is cleared,
    the marker written, nothing started, nginx not touched."""
    rig.image("app:v2")
    rig.container("b", "running", NEW, 18001, "app:v2")
    rig.container("a", "exited", OLD, 8001, "app:v1")
    rig.nginx_points_at(18001)
    run = rig.run(SERVICE)
    assert run.returncode == 0, run.stderr
    assert_serves(rig, "app:v2", NEW)
    assert rig.finished_rollout() == f"{NEW} {SERVICE}-b\n"
    assert not [c for c in rig.calls() if c.startswith(("docker run", "systemctl", "nginx"))]


def resume_before_cutover(rig: Rig):
    """Killed after the new container started, before the switch: that leftover is
    never taken for live; it goes, a new one starts and is switched to."""
    old_version_serves(rig)
    rig.image("app:v2")
    rig.container("b", "running", NEW, 18001, "app:v2")
    run = rig.run(SERVICE)
    assert run.returncode == 0, run.stderr
    name = assert_serves(rig, "app:v2", NEW)
    assert rig.finished_rollout() == f"{NEW} {name}\n"
    calls = rig.calls()
    started = next(
        i for i, c in enumerate(calls) if c.startswith(f"docker run -d --name {SERVICE}-b ")
    )
    assert f"docker rm -f {SERVICE}-b" in calls[:started]


def killed_after_cutover(rig: Rig, reloaded: bool, traffic="200"):
    """v2 serves beside v1 (the watch window), nginx reloaded or not yet."""
    old_version_serves(rig)
    rig.image("app:v2", traffic=traffic)
    rig.container("b", "running", NEW, 18001, "app:v2")
    rig.nginx_points_at(18001, reloaded=reloaded)


def resume_after_cutover(rig: Rig, reloaded: bool = True):
    killed_after_cutover(rig, reloaded)
    run = rig.run(SERVICE)
    assert run.returncode == 0, run.stderr
    assert_serves(rig, "app:v2", NEW)
    assert rig.finished_rollout() == f"{NEW} {SERVICE}-b\n"
    calls = rig.calls()
    assert not [c for c in calls if c.startswith("docker run")]
    # Watched again before the old one went.
    drained = calls.index(f"docker stop -t 10 {SERVICE}-a")
    assert [c for c in calls[:drained] if c.startswith("curl") and ":18001/" in c]


def resumed_rollout_still_rolls_back(rig: Rig, reloaded: bool = True):
    """The version on its watch when the run was killed fails when watched again: back
    to the old one, which was kept for that."""
    killed_after_cutover(rig, reloaded, traffic="502")
    run = rig.run(SERVICE)
    assert run.returncode == 1
    assert_serves(rig, "app:v1", OLD)
    assert rig.finished_rollout() == f"{OLD} {SERVICE}-a\n"


def never_healthy(rig: Rig, health="503"):
    """The new image never answers its health check: it goes, nginx never sends it a
    request, the old one serves on untouched."""
    old_version_serves(rig)
    servers_before = rig.servers_file.read_text()
    rig.image("app:v2", health=health)
    run = rig.run(SERVICE)
    assert run.returncode == 1
    assert_serves(rig, "app:v1", OLD)
    assert rig.servers_file.read_text() == servers_before
    assert rig.nginx_history() == []
    assert rig.finished_rollout() == f"{OLD} {SERVICE}-a\n"
    assert run.stderr.splitlines()[-1].startswith(f"galion-rollout: {SERVICE}: FAILED: ")


def exits_at_once(rig: Rig):
    never_healthy(rig, health="exits")


def fails_after_cutover(rig: Rig, traffic="502", health="200"):
    """Healthy, switched to, then its requests through nginx fail: nginx goes back to
    the old container, the new one goes, the run fails."""
    old_version_serves(rig)
    rig.image("app:v2", health=health, traffic=traffic)
    run = rig.run(SERVICE)
    assert run.returncode == 1
    assert "127.0.0.1:18001" in rig.nginx_history()  # it was switched to
    assert_serves(rig, "app:v1", OLD)
    assert rig.finished_rollout() == f"{OLD} {SERVICE}-a\n"


def fades_after_cutover(rig: Rig):
    """Its health check fails once it takes traffic (requests still answered)."""
    fails_after_cutover(rig, traffic="200", health="fades")


def nginx_refuses(rig: Rig):
    """nginx -t refuses the switch: the servers file goes back as it was, the new
    container goes, the old one never stopped serving."""
    old_version_serves(rig)
    servers_before = rig.servers_file.read_text()
    rig.image("app:v2")
    (rig.stub / "nginx-refuses").write_text("127.0.0.1:18001")
    run = rig.run(SERVICE)
    assert run.returncode == 1
    assert rig.servers_file.read_text() == servers_before
    assert "127.0.0.1:18001" not in rig.nginx_history()
    assert_serves(rig, "app:v1", OLD)
    assert f"docker stop -t 10 {SERVICE}-a" not in rig.calls()
    assert rig.finished_rollout() == f"{OLD} {SERVICE}-a\n"


def rollback_after_a_changed_port_pair(rig: Rig):
    """The settings moved the port pair (28001/38001 -> 8001/18001) in the rollout that
    fails: nginx goes back to where the old container really listens."""
    rig.image("app:v1")
    rig.container("a", "running", OLD, 28001, "app:v1")
    rig.nginx_points_at(28001)
    rig.finished(OLD, "a")
    rig.image("app:v2", traffic="502")
    run = rig.run(SERVICE)
    assert run.returncode == 1
    assert rig.servers_target() == "127.0.0.1:28001"
    assert_serves(rig, "app:v1", OLD)


def docker_down(rig: Rig):
    """Docker does not answer: nothing may be guessed, nothing changes."""
    old_version_serves(rig)
    servers_before = rig.servers_file.read_text()
    (rig.stub / "docker-down").write_text("")
    run = rig.run(SERVICE)
    assert run.returncode == 1
    assert rig.servers_file.read_text() == servers_before
    assert rig.nginx_history() == []
    assert [c.split()[1] for c in rig.calls() if c.startswith("docker ")] == ["ps"]


SCENARIOS = [
    fresh_start,
    fresh_start_without_servers_file,
    update,
    already_serving,
    resume_before_cutover,
    never_healthy,
    exits_at_once,
    fails_after_cutover,
    fades_after_cutover,
    nginx_refuses,
    rollback_after_a_changed_port_pair,
    docker_down,
]


@pytest.mark.parametrize("scenario", SCENARIOS, ids=lambda s: s.__name__)
def test_rollout(rig, scenario):
    scenario(rig)


RESUMED = [resume_after_cutover, resumed_rollout_still_rolls_back]


@pytest.mark.parametrize("reloaded", [True, False], ids=["reloaded", "killed-before-reload"])
@pytest.mark.parametrize("scenario", RESUMED, ids=lambda s: s.__name__)
def test_a_rollout_killed_after_cutover_is_resumed(rig, scenario, reloaded):
    scenario(rig, reloaded)


# `status`: the converge's question (galion/facts/docker.py AppRolloutStatus asks it).


def status(rig: Rig, docker: bool = True) -> dict:
    run = rig.run("status", SERVICE, docker=docker)
    assert run.returncode == 0, run.stderr
    lines = run.stdout.splitlines()
    assert len(lines) == 1, lines
    service, verdict, *fields = lines[0].split()
    assert service == SERVICE
    return {"verdict": verdict, **dict(f.split("=", 1) for f in fields)}


def finished_in_b(rig: Rig):
    rig.image("app:v2")
    rig.container("b", "running", NEW, 18001, "app:v2")
    rig.nginx_points_at(18001)
    rig.finished(NEW, "b")


def status_up_to_date(rig: Rig):
    finished_in_b(rig)
    assert status(rig) == {
        "verdict": "up-to-date",
        "live": f"{SERVICE}-b",
        "hash": NEW,
        "finished": NEW,
        "others": "-",
    }


def status_without_marker(rig: Rig):
    """Killed before its marker (during the watch or the drain): the rollout resumes."""
    finished_in_b(rig)
    rig.marker.unlink()
    assert status(rig)["verdict"] == "outdated"


def status_with_a_stale_marker(rig: Rig):
    finished_in_b(rig)
    rig.finished("0123456789abcdef", "b")
    assert status(rig)["verdict"] == "outdated"


def status_with_the_old_container_left(rig: Rig):
    finished_in_b(rig)
    rig.container("a", "running", OLD, 8001, "app:v1")
    assert status(rig) | {"verdict": "outdated", "others": f"{SERVICE}-a"} == status(rig)


def status_when_nginx_points_at_the_other_slot(rig: Rig):
    """nginx sends slot a's port, only b runs the wanted version: not done; b is a
    leftover of that rollout."""
    finished_in_b(rig)
    rig.nginx_points_at(8001)
    assert status(rig) | {"verdict": "outdated", "live": "-", "others": f"{SERVICE}-b"} == status(
        rig
    )


def status_of_a_stopped_live_container(rig: Rig):
    rig.container("a", "exited", NEW, 8001, "app:v2")
    rig.nginx_points_at(8001)
    rig.finished(NEW, "a")
    assert status(rig) | {"verdict": "outdated", "live": f"{SERVICE}-a"} == status(rig)


def status_of_an_older_version(rig: Rig):
    old_version_serves(rig)
    assert status(rig) | {"verdict": "outdated", "live": f"{SERVICE}-a", "hash": OLD} == status(rig)


def status_of_a_container_not_made_from_the_settings(rig: Rig):
    """Started by hand after the finished rollout: its label is not the settings' hash."""
    finished_in_b(rig)
    rig.container("b", "running", "byhand", 18001, "app:v2")
    assert status(rig)["verdict"] == "outdated"


def status_of_nothing(rig: Rig):
    rig.finished(NEW, "b")
    assert status(rig) == {
        "verdict": "outdated",
        "live": "-",
        "hash": "-",
        "finished": NEW,
        "others": "-",
    }


def status_finds_a_leftover_whichever_slot_is_live(rig: Rig):
    both = [("a", "running", "x", 8001, "app:v1"), ("b", "running", NEW, 18001, "app:v2")]
    for args in both:
        rig.container(*args)
    rig.nginx_points_at(18001)
    assert status(rig)["others"] == f"{SERVICE}-a"
    rig.nginx_points_at(8001)
    assert status(rig)["others"] == f"{SERVICE}-b"


def status_changes_nothing(rig: Rig):
    finished_in_b(rig)
    rig.marker.unlink()
    status(rig)
    assert [c.split()[:2] for c in rig.calls()] == [["docker", "ps"]]
    assert not rig.marker.exists()
    assert list((rig.root / "lock").iterdir()) == []


def status_before_docker_is_installed(rig: Rig):
    rig.nginx_points_at(8001)
    assert status(rig, docker=False)["verdict"] == "outdated"


STATUS_SCENARIOS = [
    status_up_to_date,
    status_without_marker,
    status_with_a_stale_marker,
    status_with_the_old_container_left,
    status_when_nginx_points_at_the_other_slot,
    status_of_a_stopped_live_container,
    status_of_an_older_version,
    status_of_a_container_not_made_from_the_settings,
    status_of_nothing,
    status_finds_a_leftover_whichever_slot_is_live,
    status_changes_nothing,
    status_before_docker_is_installed,
]


@pytest.mark.parametrize("scenario", STATUS_SCENARIOS, ids=lambda s: s.__name__)
def test_status(rig, scenario):
    scenario(rig)


def test_status_fails_when_docker_does_not_answer(rig):
    """An answer that could be wrong is worse than none: the converge stops."""
    finished_in_b(rig)
    (rig.stub / "docker-down").write_text("")
    assert rig.run("status", SERVICE).returncode == 1


def test_status_reads_the_settings_it_is_given(rig):
    """The converge asks about the settings it is about to write."""
    finished_in_b(rig)
    other = rig.root / "wanted.conf"
    other.write_text((rig.root / "conf" / f"{SERVICE}.conf").read_text() + "CONFIG_HASH=v3\n")
    run = rig.run("status", SERVICE, str(other))
    assert run.stdout.split()[1] == "outdated"


# Branches broken on purpose: (what, the script's text, its replacement, the scenario
# that must then fail). Each text must occur exactly once in the script.
MUTANTS = [
    ("no health gate", "        wait_until_healthy\n", "", never_healthy),
    (
        "rollback inverted",
        'if [ -n "$reason" ]; then roll_back; fi',
        'if [ -z "$reason" ]; then roll_back; fi',
        fails_after_cutover,
    ),
    ("5xx not counted", "if (st >= 500) e++", "if (st >= 600) e++", fails_after_cutover),
    (
        "no health check in the watch",
        'reason="its health check failed after cutover"\n            break',
        ":",
        fades_after_cutover,
    ),
    (
        "no resume",
        'if [ "$(field "$previous" 2)" = running ]; then',
        "if false; then",
        resumed_rollout_still_rolls_back,
    ),
    (
        "leftover kept",
        '    if [ -n "$(field "$new_slot" 1)" ]; then remove "$new_slot"; fi\n',
        "",
        resume_before_cutover,
    ),
    (
        "no marker when already serving",
        '            mark_done "$live_slot" || fail "cannot write $marker (disk full?)"\n',
        "",
        already_serving,
    ),
    (
        "no nginx -t before the reload",
        "if out=$(nginx -t 2>&1) && systemctl reload nginx; then",
        "if systemctl reload nginx; then",
        nginx_refuses,
    ),
    (
        "refused file not put back",
        '        mv "$SERVERS_FILE.prev" "$SERVERS_FILE"\n',
        "        :\n",
        nginx_refuses,
    ),
    (
        "rollback to the computed port",
        'write_servers "$(published "$live_slot")"',
        'write_servers "$BIND:$(port_of "$live_slot")"',
        rollback_after_a_changed_port_pair,
    ),
    (
        "live slot by port pair only",
        'case "$(field "$s" 4)" in *":$live_port->"*) live_slot=$s ;; esac',
        ":",
        rollback_after_a_changed_port_pair,
    ),
    (
        "status ignores the marker",
        ' && [ "$finished" = "$CONFIG_HASH" ]',
        "",
        status_without_marker,
    ),
    ("status ignores leftovers", ' && [ -z "$others" ]', "", status_with_the_old_container_left),
    (
        "status ignores the hash",
        '[ "$hash" = "$CONFIG_HASH" ] && ',
        "",
        status_of_a_container_not_made_from_the_settings,
    ),
]


def test_a_branch_broken_on_purpose_fails_its_scenario(tmp_path):
    """Each mutant's scenario, run on the edited copy, must fail (a few at a time: they
    wait on the stand-ins' sleeps). The scenarios pass on the script as written: they
    are the tests above."""
    script = ROLLOUT.read_text()
    tested = SCENARIOS + STATUS_SCENARIOS + RESUMED

    def survives(index: int, what: str, text: str, replacement: str, scenario) -> bool:
        assert script.count(text) == 1, f"{what}: the text to break is not in the script once"
        assert scenario in tested, f"{what}: {scenario.__name__} is not a test of its own"
        try:
            scenario(Rig(tmp_path / str(index), script.replace(text, replacement)))
        except AssertionError:
            return False
        return True

    with ThreadPoolExecutor(max_workers=4) as pool:
        survived = pool.map(lambda m: (m[1][0], survives(*m[0:1], *m[1])), enumerate(MUTANTS))
        assert [what for what, alive in survived if alive] == []
