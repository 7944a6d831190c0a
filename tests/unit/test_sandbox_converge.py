"""How the sandbox reads a pyinfra run (sandbox/converge.py): the failed hosts, and what
a failure shows of them, also when every host failed and pyinfra printed no JSON."""

import json

from sandbox import converge

# What pyinfra 3 printed when every host of a failover failed (shortened).
ALL_FAILED = """--> Starting operation: Failover | Fence the former primary (the new one is db2)
    [db1]   Error: executed 0 commands
--> Starting operation: Failover | Promote db2 to the primary
    [db2]   galion-promote: its primary still answers: fence it first
    [db2]   Error: executed 1 commands
--> Starting operation: Failover | Failover: db2 is the primary
    [app2]  Unexpected error in Python callback: RuntimeError('db2 was not promoted')
    [app2]  Error: executed 0 commands

--> Disconnecting from hosts...
--> pyinfra error: No hosts remaining!
"""


def test_without_json_the_failed_hosts_come_from_the_error_lines():
    result = converge.parse(1, 8.0, "", ALL_FAILED)
    assert result.failed_hosts == ["app2", "db1", "db2"]
    shown = result.failures()
    # Each failed host's lines under the operation it ran: the cause, not only the tail.
    assert "Fence the former primary" in shown and "[db1]   Error" in shown
    assert "its primary still answers" in shown


def test_without_json_or_error_lines_the_run_still_counts_as_failed():
    result = converge.parse(1, 1.0, "", "--> pyinfra error: No hosts remaining!\n")
    assert result.failed_hosts == ["(no JSON output)"]


def test_json_names_the_failed_hosts_and_the_changed_operations():
    doc = {
        "results": {
            "failed_hosts": ["app1"],
            "operations": [
                {"name": "Roll out galion-api", "success": ["app2"]},
                {"name": "Unchanged", "success": []},
            ],
        }
    }
    result = converge.parse(1, 3.0, json.dumps(doc), "")
    assert result.failed_hosts == ["app1"]
    assert result.changed == ["Roll out galion-api on app2"]
