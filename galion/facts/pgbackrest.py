"""Facts of pgBackRest: a stanza's status per repository."""

import json
from typing import ClassVar

from ._base import _Fact


class PgbackrestStanza(_Fact):
    """Status of a pgBackRest stanza per repository: `{repo_key: (code, message)}`.

    Code 0 is ok; 1 missing stanza path; 2 no valid backups (stanza exists); 3 missing
    stanza data; others are errors. Empty when pgBackRest is missing or cannot tell.
    """

    required_command = "pgbackrest"
    default_value: ClassVar[dict] = {}

    def command(self, stanza):
        return (
            f"runuser -u postgres -- pgbackrest --stanza={stanza} --output=json info "
            "2>/dev/null || echo '[]'"
        )

    def process(self, output):
        try:
            stanzas = json.loads("\n".join(output))
        except ValueError:
            return {}
        result = {}
        for stanza in stanzas:
            for repo in stanza.get("repo", []):
                result[repo["key"]] = (repo["status"]["code"], repo["status"]["message"])
        return result
