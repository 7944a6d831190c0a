"""Fact memo and batched prefetch: a converge that changes nothing asks its facts in a
handful of round trips instead of one per fact.

pyinfra 3 keeps no fact cache: every `host.get_fact` is a command over SSH (about
60 ms each), and a converge of every role asks about 300 of them (the stat and hash of
each managed file, each unit's state, the package list...). Two things cut that:

- **Memo.** Each fact's answer is kept per host, keyed by the fact, its arguments and
  the arguments that change how it runs (sudo user, shell). The memo forgets
  everything it knows about a host as soon as anything else runs a command on it or
  copies a file to it: an operation's command can change any fact, so no answer
  outlives a change made by this run.
- **Prefetch.** At the end of a run the keys of the facts it asked (which facts, with
  which arguments; never their answers) are written to `.galion-cache/` on the
  operator's machine. Right after connecting, the next run asks all of them at once, a
  few dozen per command, and fills the memo with the answers, read fresh from the host.
  A fact the batch could not answer (it failed, its program is missing) is simply asked
  again on its own, as pyinfra would; keys no longer asked fall out of the next file.

- **Refill.** After a change made the memo forget, the next fact asked that last run
  also asked is read together with the ones that came after it last time, in one
  command: 8 facts, then twice as many each time the run reaches the end of what it
  read with no change in between (at most 256). A converge that changes one thing
  early no longer asks every later fact on its own.

So a drift on the host is seen exactly as before: every answer is read during this
run, after the last command that could have changed it, and any command makes the
memo forget.

    GALION_FACT_MEMO=0        turns all three off (every fact asked every time, as pyinfra does)
    GALION_FACT_REFILL=0      turns the refill off (bench/converge compares)
    GALION_COUNT_COMMANDS=1   prints, at exit, how many commands each host ran
    GALION_FACT_MEMO_DEBUG=1  prints every fact asked over SSH, the batches, what forgot
"""

import atexit
import copy
import hashlib
import importlib
import json
import os
import secrets as _random
import sys
from collections import Counter
from pathlib import Path

from pyinfra.api import facts as _facts
from pyinfra.api import host as _host
from pyinfra.api.arguments import CONNECTOR_ARGUMENT_KEYS
from pyinfra.api.command import StringCommand

from .paths import REPO

CACHE_DIR = REPO / ".galion-cache" / "fact-keys"
DEBUG = os.environ.get("GALION_FACT_MEMO_DEBUG") == "1"  # prints misses and batches
BATCH_TIMEOUT = 120  # seconds
BATCH_BYTES = 48_000  # one prefetch command stays well under Linux's 128 KiB argument cap
REFILL_FIRST = 8  # facts read at once by the first refill after a change
REFILL_MOST = 256  # the most a refill reads at once (it doubles while nothing changes)
REFILL = os.environ.get("GALION_FACT_REFILL", "1") != "0"

# The arguments that change what a fact's command sees: who runs it, where, how.
HOW = (
    "_sudo",
    "_sudo_user",
    "_use_sudo_login",
    "_preserve_sudo_env",
    "_su_user",
    "_use_su_login",
    "_preserve_su_env",
    "_su_shell",
    "_doas",
    "_doas_user",
    "_dzdo",
    "_dzdo_user",
    "_env",
    "_chdir",
    "_shell_executable",
    "_get_pty",
)

_memo: dict[str, dict] = {}  # host name -> {key: fact data}
# Host name -> fact commands running on it right now: a count, as the greenlets that load
# the deploy for each host at once may ask facts of the same host at the same time.
_in_fact: Counter = Counter()
_asked_keys: dict[str, dict] = {}  # host name -> {key: (module, class, kwargs, how)}
_hosts: dict[str, object] = {}  # host name -> Host, for the key files at exit
commands: Counter = Counter()  # host name -> commands run (facts and operations)
asked: Counter = Counter()  # host name -> facts asked (memo hits included)
prefetched: Counter = Counter()  # host name -> answers filled in by the prefetch
refilled: Counter = Counter()  # host name -> answers filled in by refills after a change
_order: dict[str, list] = {}  # host name -> last run's fact rows, in the order asked
_position: dict[str, dict] = {}  # host name -> {key: index in _order}
_forgotten: Counter = Counter()  # host name -> times the memo forgot
_refill: dict[str, tuple[int, int]] = {}  # host name -> (size, _forgotten) of the last refill
_unanswered: dict[str, set] = {}  # host name -> keys a batch got no answer for, since a change


def _parts(state, host, cls, args, kwargs):
    fact_kwargs, global_kwargs = _facts._handle_fact_kwargs(state, host, cls, args, kwargs)
    fact_kwargs = {k: v for k, v in fact_kwargs.items() if k != "self"}
    how = {k: global_kwargs.get(k) for k in HOW}
    return fact_kwargs, how


def _key(module: str, name: str, fact_kwargs: dict, how: dict) -> tuple:
    return (module, name, repr(sorted(fact_kwargs.items())), repr(sorted(how.items())))


def forget(host_name: str) -> None:
    _memo.pop(host_name, None)
    _unanswered.pop(host_name, None)
    _forgotten[host_name] += 1


def _row_key(row) -> tuple:
    return _key(row[0], row[1], row[2], row[3])


def _key_file(host) -> Path:
    """One file per host and per run kind: a restore (restore.py) asks other facts than
    a converge (deploy.py), and must not prefetch the converge's."""
    scripts = sorted(Path(a).name for a in sys.argv[1:] if a.endswith(".py"))
    where = f"{host.name}|{host.data.get('ssh_hostname') or ''}|{','.join(scripts)}"
    return CACHE_DIR / (hashlib.sha256(where.encode()).hexdigest()[:16] + ".json")


def _plain(value) -> bool:
    """Survives a JSON round trip unchanged (no tuples, objects...)."""
    try:
        return json.loads(json.dumps(value)) == value
    except (TypeError, ValueError):
        return False


def _secret_values() -> list[str]:
    try:
        from galion import secrets

        return [v for v in secrets._values().values() if len(v) >= 6]
    except Exception:  # no .env: nothing to keep out
        return []


def save_keys() -> None:
    """Write each host's asked fact keys (never answers, never a secret value)."""
    hidden = _secret_values()
    for name, keys in _asked_keys.items():
        host = _hosts.get(name)
        if host is None:
            continue
        rows = [list(row) for row in keys.values()]
        text = json.dumps(rows, sort_keys=True)
        if any(v in text for v in hidden):
            rows = [r for r in rows if not any(v in json.dumps(r) for v in hidden)]
            text = json.dumps(rows, sort_keys=True)
        path = _key_file(host)
        try:
            path.parent.mkdir(parents=True, exist_ok=True)
            tmp = path.with_suffix(f".{os.getpid()}.tmp")  # parallel runs never share it
            tmp.write_text(text)
            tmp.chmod(0o600)
            tmp.replace(path)
        except OSError as error:  # a read-only checkout: the next run asks one by one
            print(f"galion: {name}: fact keys not saved: {error}", file=sys.stderr)


def _fact_command(row) -> tuple[object, str, str | None] | None:
    """The fact object (its command may keep arguments that process() needs), the
    command's text and the program it requires."""
    module, name, fact_kwargs, _how = row
    try:
        cls = getattr(importlib.import_module(module), name)
        fact = cls()
        command = fact.command(**fact_kwargs) if callable(fact.command) else fact.command
        if fact.shell_executable:
            return None
        text = command.get_raw_value() if isinstance(command, StringCommand) else str(command)
        required = fact.requires_command
        if callable(required):
            required = required(**fact_kwargs)
        if required:
            required = (
                required.get_raw_value() if isinstance(required, StringCommand) else str(required)
            )
        return fact, text, required
    except Exception:  # a fact renamed or changed since the keys were saved
        return None


def prefetch(state, host) -> None:
    """Ask last run's facts in batches and fill the memo with the answers."""
    path = _key_file(host)
    try:
        rows = json.loads(path.read_text())
    except (OSError, ValueError):
        return
    rows = [r for r in rows if isinstance(r, list) and len(r) == 4 and isinstance(r[2], dict)]
    _order[host.name] = rows
    _position[host.name] = {_row_key(r): i for i, r in reversed(list(enumerate(rows)))}
    prefetched[host.name] += _ask(state, host, rows)


def refill(state, host, key: tuple) -> None:
    """After a change: read `key` and the facts that followed it in last run's order, in
    one command (see the module's docstring for the sizes)."""
    start = _position.get(host.name, {}).get(key)
    tried = _unanswered.get(host.name, set())
    if not REFILL or start is None or key in tried:
        return
    size, at = _refill.get(host.name, (0, -1))
    size = min(size * 2, REFILL_MOST) if at == _forgotten[host.name] else REFILL_FIRST
    _refill[host.name] = (size, _forgotten[host.name])
    known = _memo.get(host.name, {})
    rows = [
        r
        for r in _order[host.name][start : start + size]
        if _row_key(r) not in known and _row_key(r) not in tried
    ]
    refilled[host.name] += _ask(state, host, rows)


def _ask(state, host, rows: list) -> int:
    """Ask these facts in as few commands as fit; the number of answers kept."""
    answered = 0
    # Asked since the last change: not asked in a batch again (answered ones leave it).
    _unanswered.setdefault(host.name, set()).update(_row_key(row) for row in rows)
    groups: dict[str, list] = {}
    for row in rows:
        groups.setdefault(json.dumps(row[3], sort_keys=True), []).append(row)
    for how_text, members in groups.items():
        how = json.loads(how_text)
        runnable = []
        for row in members:
            made = _fact_command(row)
            if made:
                runnable.append((row, *made))
        batch, size = [], 0
        for item in runnable:
            batch.append(item)
            size += len(item[2]) + 200
            if size > BATCH_BYTES:
                answered += _run_batch(state, host, how, batch)
                batch, size = [], 0
        if batch:
            answered += _run_batch(state, host, how, batch)
    return answered


def _run_batch(state, host, how: dict, batch: list) -> int:
    token = "@@galion-fact-" + _random.token_hex(8)
    missing = token + "-missing"
    lines = []
    for i, (_row, _cls, text, required) in enumerate(batch):
        body = f"( {text}\n)"
        if required:
            body = (
                f"if command -v {required} >/dev/null 2>&1; then {body}; else echo '{missing}'; fi"
            )
        # The end marker starts on a line of its own even after output with no final
        # newline; the empty line this leaves after other output is dropped below.
        lines.append(f"echo '{token} {i}'; {body} 2>/dev/null; printf '\\n{token} end %s\\n' $?")
    script = "\n".join(lines)
    run_kwargs = {k: v for k, v in how.items() if k in CONNECTOR_ARGUMENT_KEYS}
    _in_fact[host.name] += 1
    try:
        # A batch that takes this long is abandoned: its facts are asked one by one.
        ok, output = host.run_shell_command(
            StringCommand(script), _timeout=BATCH_TIMEOUT, **run_kwargs
        )
    except Exception:
        return 0
    finally:
        _in_fact[host.name] -= 1
    if DEBUG:
        print(
            f"galion: prefetch batch of {len(batch)} ({len(script)} bytes): ok={ok}, "
            f"{len(output.stdout_lines)} lines, stderr {output.stderr_lines[-3:]}",
            file=sys.stderr,
        )
    if not ok:
        return 0
    answers: dict[int, list[str]] = {}
    current, collected = None, []
    for line in output.stdout_lines:
        if line.startswith(token + " end "):
            if current is not None and line.rsplit(" ", 1)[1] == "0":
                if collected and collected[-1] == "":
                    collected.pop()
                answers[current] = collected
            current, collected = None, []
        elif line.startswith(token + " "):
            current, collected = int(line.split()[1]), []
        elif current is not None:
            collected.append(line)
    if DEBUG:
        for i, item in enumerate(batch):
            if i not in answers:
                print(f"galion: prefetch no answer: {item[2][:150]}", file=sys.stderr)
    memo = _memo.setdefault(host.name, {})
    unanswered = _unanswered.setdefault(host.name, set())
    kept = 0
    for i, lines_out in answers.items():
        row, fact, _text, _required = batch[i]
        if lines_out == [missing]:
            continue
        try:
            data = fact.process(lines_out) if lines_out else fact.default()
        except Exception as e:
            if DEBUG:
                print(
                    f"galion: prefetch process failed {row[1]} {lines_out[:3]}: {e!r}",
                    file=sys.stderr,
                )
            continue
        memo[_row_key(row)] = data
        unanswered.discard(_row_key(row))
        kept += 1
    return kept


def install(enabled: bool | None = None) -> None:
    """Wrap pyinfra's fact loading and the host's command and upload calls (once)."""
    if getattr(_facts, "_galion_memo_installed", False):
        return
    _facts._galion_memo_installed = True
    if enabled is None:
        enabled = os.environ.get("GALION_FACT_MEMO", "1") != "0"
    original_get_fact = _facts._get_fact
    original_run = _host.Host.run_shell_command
    original_put = _host.Host.put_file
    original_rsync = _host.Host.rsync

    def get_fact(state, host, cls, args=None, kwargs=None, *rest, **more):
        asked[host.name] += 1
        key = None
        if enabled:
            fact_kwargs, how = _parts(state, host, cls, args, kwargs)
            key = _key(cls.__module__, cls.__qualname__, fact_kwargs, how)
            _hosts[host.name] = host
            if _plain(fact_kwargs) and _plain(how):
                _asked_keys.setdefault(host.name, {})[key] = (
                    cls.__module__,
                    cls.__qualname__,
                    fact_kwargs,
                    how,
                )
        known = _memo.get(host.name, {})
        if key is not None and key not in known and not _in_fact[host.name]:
            try:
                refill(state, host, key)
            except Exception as error:  # never worse than asking this one fact
                if DEBUG:
                    print(f"galion: refill failed: {error!r}", file=sys.stderr)
            known = _memo.get(host.name, {})
        if key is not None and key in known:
            return copy.deepcopy(known[key])  # operations may change what they get
        if DEBUG:
            print(
                f"galion: fact asked ({len(known)} known): {key or cls.__qualname__}",
                file=sys.stderr,
            )
        failed_before = len(state.failed_hosts)
        _in_fact[host.name] += 1
        try:
            data = original_get_fact(state, host, cls, args, kwargs, *rest, **more)
        finally:
            _in_fact[host.name] -= 1
        # A fact that failed (its default answer) is not kept: the next asker asks again.
        if key is not None and host not in state.failed_hosts:
            if len(state.failed_hosts) == failed_before:
                _memo.setdefault(host.name, {})[key] = copy.deepcopy(data)
        return data

    def run_shell_command(self, *args, **kwargs):
        commands[self.name] += 1
        if not _in_fact[self.name]:
            if DEBUG:
                print(f"galion: a command forgets the memo: {str(args[0])[:160]}", file=sys.stderr)
            forget(self.name)
        return original_run(self, *args, **kwargs)

    def put_file(self, *args, **kwargs):
        forget(self.name)
        return original_put(self, *args, **kwargs)

    def rsync(self, *args, **kwargs):
        forget(self.name)
        return original_rsync(self, *args, **kwargs)

    _facts._get_fact = get_fact
    _host.Host.run_shell_command = run_shell_command
    _host.Host.put_file = put_file
    _host.Host.rsync = rsync
    if enabled:
        atexit.register(save_keys)
        # The CLI connects every host, then runs the deploy: the prefetch goes between.
        import pyinfra_cli.cli as cli

        connect_all = cli.connect_all

        def connect_then_prefetch(state):
            connected = connect_all(state)
            prefetch_all(state)
            return connected

        cli.connect_all = connect_then_prefetch

    if os.environ.get("GALION_COUNT_COMMANDS") == "1":

        def report():
            for name in sorted(commands):
                print(
                    f"galion: {name}: {commands[name]} commands run, "
                    f"{asked[name]} facts asked, {prefetched[name]} answered by the prefetch, "
                    f"{refilled[name]} by refills",
                    file=sys.stderr,
                )

        atexit.register(report)


def prefetch_all(state) -> None:
    """After connecting: the prefetch for every connected host (off with the memo)."""
    if os.environ.get("GALION_FACT_MEMO", "1") == "0":
        return
    for host in state.inventory:
        if host.connected:
            try:
                prefetch(state, host)
            except Exception as error:  # never worse than no prefetch
                print(f"galion: {host.name}: fact prefetch skipped: {error}", file=sys.stderr)
