"""galion.ops.across_hosts: the one-host-at-a-time guard; the barrier run by pyinfra on
fake hosts."""

import os
from pathlib import Path

import pytest
from pyinfra.api import OperationError

from galion.ops import across_hosts
from tests.unit.helpers import run_pyinfra


def test_one_host_at_a_time_starts_on_no_host_after_one_failed():
    """The guard around a serial step: a host whose command started and never finished
    (it failed) stops the step on every later host, naming it; a finished one does not."""
    key = "unit test step"
    across_hosts._start(key, "app1")
    across_hosts._done(key, "app1")
    across_hosts._start(key, "app2")  # app1 finished: app2 goes
    with pytest.raises(OperationError, match="it failed on app2 first"):
        across_hosts._start(key, "app3")  # app2 never finished
    across_hosts._start("another step", "app3")  # other steps are not held back


REPO = Path(__file__).resolve().parents[2]
# Host a has three steps before the shared line, host b one after it. pyinfra orders each
# host's own operations and otherwise takes the hosts' next ones side by side: without a
# shared step, b's runs right after a's first.
DEPLOY = """
import os
from pyinfra import host
from pyinfra.operations import python
from galion.ops import barrier


def note(text):
    with open(os.environ["ORDER_LOG"], "a") as log:
        log.write(text + "\\n")


if host.name == "@fake/a":
    for step in ("a1", "a2", "a3"):
        python.call(name=step, function=note, text=step)
STEP
if host.name == "@fake/b":
    python.call(name="b after", function=note, text="b after")
"""


def run_order(tmp_path: Path, step: str) -> list[str]:
    (tmp_path / "deploy.py").write_text(DEPLOY.replace("STEP", step))
    log = tmp_path / "order.log"
    log.unlink(missing_ok=True)
    env = dict(
        os.environ,
        PYTHONPATH=str(REPO),
        ORDER_LOG=str(log),
        PYINFRA_FAKE_DELAY="0",
        PYINFRA_FAKE_DELAY_JITTER="0",
    )
    proc = run_pyinfra(tmp_path, env, "@fake/a,@fake/b", "deploy.py")
    assert proc.returncode == 0, proc.stderr[-2000:]
    return log.read_text().split("\n")[:-1]


def test_without_a_shared_step_the_other_host_does_not_wait(tmp_path):
    assert run_order(tmp_path, "pass") == ["a1", "b after", "a2", "a3"]


def test_a_barrier_holds_every_host_until_all_reached_it(tmp_path):
    assert run_order(tmp_path, 'barrier("both here")') == ["a1", "a2", "a3", "b after"]


def test_a_barrier_changes_nothing(monkeypatch):
    made = []
    monkeypatch.setattr(across_hosts.files, "directory", lambda **kwargs: made.append(kwargs))
    across_hosts.barrier("PostgreSQL's home (the primary's roles are ready)")
    assert made == [
        {"name": "PostgreSQL's home (the primary's roles are ready)", "path": "/", "present": True}
    ]
