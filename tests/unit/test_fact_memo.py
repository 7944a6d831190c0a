"""The fact memo (galion/fact_memo.py), run for real: pyinfra against @local with a
config.py that installs it, counting the commands the host ran."""

import os
import re
from pathlib import Path

from tests.unit.helpers import run_pyinfra

REPO = Path(__file__).resolve().parents[2]
DEPLOY = """
import os
from pyinfra import host
from pyinfra.facts.files import File
from pyinfra.facts.server import Hostname
from pyinfra.operations import python

P = os.environ["MEMO_PATH"]
for _ in range(5):
    host.get_fact(Hostname)


def check():
    assert host.get_fact(File, path=P) is None
    assert host.get_fact(File, path=P) is None
    host.run_shell_command(f"touch {P}")
    assert host.get_fact(File, path=P) is not None, "the memo kept an answer from before a change"


python.call(name="memo", function=check)
"""


# A change first, then twenty facts: read by refills after it, in last run's order.
AFTER_A_CHANGE = """
import os
from pyinfra import host
from pyinfra.facts.files import File
from pyinfra.operations import python

P = os.environ["MEMO_PATH"]


def check():
    host.run_shell_command(f"touch {P}")
    assert host.get_fact(File, path=P) is not None, "a refill kept an answer from before"
    for i in range(20):
        assert host.get_fact(File, path=f"{P}-absent-{i}") is None


python.call(name="memo", function=check)
"""


def run(
    tmp_path: Path, memo: str, deploy: str = DEPLOY, script: str = "deploy.py", refill: str = "1"
) -> tuple[int, int, int, int]:
    """Counts of one run: commands, facts asked, answered by the prefetch, by refills.
    The fact keys are kept per script name: one name per deploy text."""
    (tmp_path / "config.py").write_text("from galion import fact_memo\nfact_memo.install()\n")
    (tmp_path / script).write_text(deploy)
    target = tmp_path / f"made-{memo}"
    env = dict(
        os.environ,
        PYTHONPATH=str(REPO),
        MEMO_PATH=str(target),
        GALION_FACT_MEMO=memo,
        GALION_FACT_REFILL=refill,
        GALION_COUNT_COMMANDS="1",
    )
    proc = run_pyinfra(tmp_path, env, "@local", script)
    assert proc.returncode == 0, proc.stderr[-2000:]
    assert target.exists()
    target.unlink()
    found = re.search(
        r"(\d+) commands run, (\d+) facts asked, (\d+) answered by the prefetch, "
        r"(\d+) by refills",
        proc.stderr,
    )
    return tuple(int(n) for n in found.groups())


def test_a_fact_is_asked_once_until_a_command_changes_the_host(tmp_path):
    without = run(tmp_path, "0")
    with_memo = run(tmp_path, "1")
    assert without[1] == with_memo[1] == 8  # the deploy asked 8 facts either way
    # Hostname once instead of five times, File twice instead of three times (the
    # touch made the memo forget), and the check inside proves the answer after it.
    assert without[0] - with_memo[0] == 5, (without, with_memo)


def test_the_next_run_asks_last_runs_facts_in_one_batch_read_fresh(tmp_path):
    first = run(tmp_path, "1")
    second = run(tmp_path, "1")
    # Hostname and File (absent) came from one batched command; the check inside the
    # deploy still sees the file its own touch created (the memo forgot at the touch),
    # and the file's absence at the start was read in this run (deleted after the last).
    assert second[2] == 2, second
    assert second[0] == first[0] - 1, (first, second)


def test_after_a_change_the_next_facts_are_read_in_growing_batches(tmp_path):
    script = "deploy_after_a_change.py"
    without = run(tmp_path, "0", AFTER_A_CHANGE, script)
    run(tmp_path, "1", AFTER_A_CHANGE, script)  # leaves the keys in this order
    second = run(tmp_path, "1", AFTER_A_CHANGE, script)
    # Without the memo: the touch and 21 facts, one command each. With it: the prefetch
    # (its answers forgotten at the touch), the touch, then refills of 8 and 16 facts
    # answer all 21, read after the touch (the file it made is seen).
    assert without[:2] == (22, 21), without
    assert second[3] == 21, second
    assert second[0] == 1 + 1 + 2, second
    no_refill = run(tmp_path, "1", AFTER_A_CHANGE, script, refill="0")
    assert no_refill[0] == 1 + 1 + 21 and no_refill[3] == 0, no_refill
