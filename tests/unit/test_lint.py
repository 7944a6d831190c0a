"""Lint as tests: ruff over the Python tree, shellcheck over every shell script."""

import shutil
import subprocess
import sys
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[2]


def shell_scripts() -> list[Path]:
    """Every file of the repository that starts with a bash or sh shebang."""
    listed = subprocess.run(
        ["git", "ls-files", "-co", "--exclude-standard"],
        cwd=REPO,
        text=True,
        capture_output=True,
        check=True,
    ).stdout.split()
    scripts = []
    for name in listed:
        path = REPO / name
        if path.is_file() and not path.is_symlink():
            with open(path, "rb") as f:
                first = f.readline()
            if first.startswith(b"#!") and (b"bash" in first or first.rstrip().endswith(b"/sh")):
                scripts.append(path)
    return scripts


def _ruff() -> str:
    found = Path(sys.executable).parent / "ruff"
    return str(found) if found.exists() else (shutil.which("ruff") or "ruff")


def test_the_scan_finds_the_scripts():
    names = {p.name for p in shell_scripts()}
    assert {"galion-restore", "test.sh", "install.sh", "converge"} <= names, names


@pytest.mark.parametrize("script", shell_scripts(), ids=lambda p: str(p.relative_to(REPO)))
def test_shellcheck(script):
    proc = subprocess.run(["shellcheck", str(script)], cwd=REPO, text=True, capture_output=True)
    assert proc.returncode == 0, proc.stdout


def test_ruff_check():
    proc = subprocess.run([_ruff(), "check", "."], cwd=REPO, text=True, capture_output=True)
    assert proc.returncode == 0, proc.stdout[-4000:]


def test_ruff_format():
    proc = subprocess.run(
        [_ruff(), "format", "--check", "."], cwd=REPO, text=True, capture_output=True
    )
    assert proc.returncode == 0, proc.stdout[-4000:]
