"""Run pyinfra against the sandbox inventory and read what changed from --json.

python -m sandbox.converge            # converge as the deploy user
python -m sandbox.converge bootstrap  # first run as root, then as the deploy user
"""

import json
import re
import subprocess
import sys
import time
from dataclasses import dataclass
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
INVENTORY = "inventories/sandbox.py"


@dataclass
class Result:
    returncode: int
    seconds: float
    changed: list[str]
    failed_hosts: list[str]
    stdout: str
    stderr: str

    def check(self) -> "Result":
        if self.returncode != 0 or self.failed_hosts:
            raise RuntimeError(
                f"converge failed (exit {self.returncode}, failed hosts "
                f"{self.failed_hosts}):\n{self.failures()}"
            )
        return self

    def failures(self, most: int = 80) -> str:
        """What pyinfra printed about the failed hosts, each under the operation it
        ran (a plain tail shows only the hosts that went on), then the tail."""
        shown, operation = [], None
        for line in self.stderr.splitlines():
            if line.startswith("--> Starting operation:"):
                operation = line
            elif any(f"[{h}]" in line for h in self.failed_hosts) and not re.search(
                r"\]\s+(Success|No changes|Skipped)\s*$", line
            ):
                if operation:
                    shown.append(operation)
                    operation = None
                shown.append(line)
        tail = self.stderr.splitlines()[-15:]
        return "\n".join(shown[-most:] + ["(last lines:)"] + tail)


# "    [db1]  Error: ..." / "    [app2]  Unexpected error in Python callback: ...".
FAILED_HOST_LINE = re.compile(r"^\s*\[([^\]\s]+)\]\s+(?:Error|Unexpected error)", re.MULTILINE)


def pyinfra(
    *args: str, env: dict | None = None, timeout: float = 1800
) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, "-m", "pyinfra", *args],
        cwd=REPO,
        env=env,
        text=True,
        capture_output=True,
        timeout=timeout,
    )


def converge(
    *extra: str, env: dict | None = None, inventory: str = INVENTORY, deploy: str = "deploy.py"
) -> Result:
    """One `pyinfra -y --json` run (of deploy.py, or of an operator command such as
    actions/failover.py); `changed` lists operations that changed a host."""
    started = time.monotonic()
    proc = pyinfra("-y", "--json", inventory, deploy, *extra, env=env)
    return parse(proc.returncode, time.monotonic() - started, proc.stdout, proc.stderr)


def parse(returncode: int, seconds: float, stdout: str, stderr: str) -> Result:
    """A run's Result from what `pyinfra --json` printed."""
    changed, failed = [], []
    try:
        doc = json.loads(stdout)
        results = doc.get("results", {})
        failed = results.get("failed_hosts", [])
        changed = [
            f"{op['name']} on {','.join(op['success'])}"
            for op in results.get("operations", [])
            if op.get("success")
        ]
    except json.JSONDecodeError:
        # No JSON when every host failed ("No hosts remaining!"): the hosts pyinfra named
        # in an error line, so that failures() shows what each of them printed.
        failed = sorted(set(FAILED_HOST_LINE.findall(stderr))) or ["(no JSON output)"]
    return Result(returncode, seconds, changed, failed, stdout, stderr)


def bootstrap() -> list[Result]:
    """The operator's first run (as root), then the run as the deploy user that proves it."""
    first = converge("--data", "ssh_user=root").check()
    second = converge().check()
    return [first, second]


def main(argv: list[str]) -> int:
    try:
        results = bootstrap() if argv[:1] == ["bootstrap"] else [converge(*argv).check()]
    except RuntimeError as exc:
        print(f"converge: {exc}", file=sys.stderr)
        return 1
    for r in results:
        print(f"converge: {r.seconds:.1f}s, {len(r.changed)} operation(s) changed", file=sys.stderr)
        if len(r.changed) <= 20:  # a few: name them (a first converge changes hundreds)
            for name in r.changed:
                print(f"converge:   changed: {name}", file=sys.stderr)
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
