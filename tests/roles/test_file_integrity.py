"""File integrity (AIDE), checked on the live host (operations/file_integrity.py)."""

import re

PLANTED = "/usr/local/bin/galion-test-planted"
IN_DATA_DIR = "/var/lib/galion/galion-test-planted"


def test_baseline_records_the_chosen_hashes(node):
    conf = node.host.file("/etc/aide/aide.conf").content_string
    assert re.search(
        rf"^Checksums = {re.escape(node.data['file_integrity_checksums'])}$", conf, re.M
    )
    assert node.host.file("/var/lib/aide/aide.db").exists
    # The marker that the baseline was recorded with these hashes (else: a new one).
    marker = node.host.file("/var/lib/aide/galion-baseline-hashes").content_string
    assert marker.strip() == node.data["file_integrity_checksums"]


def test_a_planted_program_is_reported_and_data_directories_are_not(node):
    """The daily check's own command: a new file in /usr/local/bin shows, one in a data
    directory left out by design does not."""
    try:
        node.host.check_output(f"install -m 755 /bin/true {PLANTED}")
        node.host.check_output(f"install -d /var/lib/galion && touch {IN_DATA_DIR}")
        report = node.host.run("aide --check --config /etc/aide/aide.conf")
        # Exit code bits: 1 added, 2 removed, 4 changed (the run itself failing is >= 14).
        assert report.rc & 1 and report.rc < 14, report.stderr
        assert PLANTED in report.stdout
        assert IN_DATA_DIR not in report.stdout
    finally:
        node.host.run(f"rm -f {PLANTED} {IN_DATA_DIR}")
