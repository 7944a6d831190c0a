"""files/nginx_tls/galion-nginx-metrics, run here on real files: counts per public name
and status class that only grow, also across a log rotation."""

import os
import re
import subprocess
from pathlib import Path

SCRIPT = Path(__file__).resolve().parents[2] / "files" / "nginx_tls" / "galion-nginx-metrics"
NAMES = ("galion.app", "api.galion.app")


def line(name: str, status: int, seconds: float = 0.01) -> str:
    # What nginx's `galion` log_format writes; a client controls the user agent.
    return (
        f'203.0.113.9 - - [05/Dec/2026:12:00:00 +0000] "GET / HTTP/1.1" {status} 5 "-" '
        f'"agent st=999 host=evil" host={name} rt={seconds:.3f} st={status}\n'
    )


def run(tmp_path: Path) -> dict[tuple[str, str], int]:
    subprocess.run(
        ["bash", str(SCRIPT), str(tmp_path / "access.log"), str(tmp_path), str(tmp_path / "state")]
        + list(NAMES),
        check=True,
    )
    text = (tmp_path / "galion_nginx.prom").read_text()
    return {
        (m[1], m[2]): int(m[3])
        for m in re.finditer(
            r'galion_nginx_responses_total\{vhost="([^"]+)",code_class="(\w+)"\} (\d+)', text
        )
    }


def append(path: Path, *lines: str) -> None:
    with path.open("a") as f:
        f.writelines(lines)


def test_counts_by_name_and_class_and_ignores_what_a_client_writes(tmp_path):
    log = tmp_path / "access.log"
    append(log, line("galion.app", 200), line("api.galion.app", 502), line("x.example", 404))
    counts = run(tmp_path)
    assert counts[("galion.app", "2xx")] == 1
    assert counts[("api.galion.app", "5xx")] == 1
    assert counts[("other", "4xx")] == 1
    assert counts[("galion.app", "5xx")] == 0  # every series exists from the start
    # The next run reads only what was added.
    append(log, line("galion.app", 200))
    assert run(tmp_path)[("galion.app", "2xx")] == 2


def test_no_line_is_lost_or_counted_twice_across_a_rotation(tmp_path):
    log = tmp_path / "access.log"
    append(log, line("galion.app", 200))
    run(tmp_path)
    # Written after the last run, then logrotate renames the log (delaycompress).
    append(log, line("galion.app", 200), line("galion.app", 500))
    os.rename(log, tmp_path / "access.log.1")
    append(log, line("galion.app", 200))
    counts = run(tmp_path)
    assert counts[("galion.app", "2xx")] == 3
    assert counts[("galion.app", "5xx")] == 1
    # The next run does not read the rotated log again.
    assert run(tmp_path)[("galion.app", "2xx")] == 3
