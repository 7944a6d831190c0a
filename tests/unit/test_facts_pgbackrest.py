"""galion.facts.pgbackrest: a stanza's status per repository.

Commands as literal strings, parsers fed recorded output (see test_facts.py).
"""

import json

from galion.facts import pgbackrest
from tests.unit.fact_coverage import covers


def _pgbackrest_info(*repos, stanza_code=0, stanza_message="ok"):
    """`pgbackrest info --output=json` as pgBackRest prints it: one line."""
    return json.dumps(
        [
            {
                "archive": [],
                "backup": [],
                "cipher": "aes-256-cbc",
                "db": [{"id": 1, "repo-key": 1, "system-id": 7316843561273472345, "version": "15"}],
                "name": "main",
                "repo": [
                    {"cipher": "aes-256-cbc", "key": key, "status": {"code": code, "message": msg}}
                    for key, code, msg in repos
                ],
                "status": {
                    "code": stanza_code,
                    "lock": {"archive": {"held": False}, "backup": {"held": False}},
                    "message": stanza_message,
                },
            }
        ],
        separators=(",", ":"),
    )


@covers(pgbackrest.PgbackrestStanza)
class TestPgbackrestStanza:
    def test_command_and_requirements(self):
        fact = pgbackrest.PgbackrestStanza()
        assert fact.command("main") == (
            "runuser -u postgres -- pgbackrest --stanza=main --output=json info "
            "2>/dev/null || echo '[]'"
        )
        assert fact.requires_command() == "pgbackrest"
        assert fact.requires_command(stanza="main") == "pgbackrest"
        assert fact.default() == {}

    def test_ok(self):
        output = [_pgbackrest_info((1, 0, "ok"), (2, 0, "ok"))]
        assert pgbackrest.PgbackrestStanza().process(output) == {1: (0, "ok"), 2: (0, "ok")}

    def test_missing_stanza(self):
        output = [
            _pgbackrest_info(
                (1, 1, "missing stanza path"), stanza_code=1, stanza_message="missing stanza path"
            )
        ]
        assert pgbackrest.PgbackrestStanza().process(output) == {1: (1, "missing stanza path")}

    def test_one_repo_in_error(self):
        message = "[ProtocolError] HTTP request failed with 403 (Forbidden)"
        output = [
            _pgbackrest_info(
                (1, 2, "no valid backups"),
                (2, 99, message),
                stanza_code=99,
                stanza_message="other",
            )
        ]
        assert pgbackrest.PgbackrestStanza().process(output) == {
            1: (2, "no valid backups"),
            2: (99, message),
        }

    def test_pretty_printed_json_over_several_lines(self):
        output = json.dumps(json.loads(_pgbackrest_info((1, 0, "ok"))), indent=2).splitlines()
        assert pgbackrest.PgbackrestStanza().process(output) == {1: (0, "ok")}

    def test_failure_prints_an_empty_list(self):
        assert pgbackrest.PgbackrestStanza().process(["[]"]) == {}

    def test_not_json(self):
        assert (
            pgbackrest.PgbackrestStanza().process(["ERROR: [055]: unable to load info file"]) == {}
        )
        assert pgbackrest.PgbackrestStanza().process([]) == {}

    def test_stanza_without_repo_list(self):
        assert pgbackrest.PgbackrestStanza().process(['[{"name":"main"}]']) == {}
