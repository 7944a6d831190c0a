"""The fact memo (galion/fact_memo.py), run for real: pyinfra against @local with a
config.py that installs it, counting the commands the host ran."""

import os
import re
import subprocess
import sys
from pathlib import Path

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


def run(tmp_path: Path, memo: str) -> tuple[int, int, int]:
    (tmp_path / "config.py").write_text("from galion import fact_memo\nfact_memo.install()\n")
    (tmp_path / "deploy.py").write_text(DEPLOY)
    target = tmp_path / f"made-{memo}"
    env = dict(
        os.environ,
        PYTHONPATH=str(REPO),
        MEMO_PATH=str(target),
        GALION_FACT_MEMO=memo,
        GALION_COUNT_COMMANDS="1",
    )
    proc = subprocess.run(
        [sys.executable, "-m", "pyinfra", "-y", "@local", "deploy.py"],
        cwd=tmp_path,
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert proc.returncode == 0, proc.stderr[-2000:]
    assert target.exists()
    target.unlink()
    found = re.search(
        r"(\d+) commands run, (\d+) facts asked, (\d+) answered by the prefetch", proc.stderr
    )
    return int(found.group(1)), int(found.group(2)), int(found.group(3))


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
