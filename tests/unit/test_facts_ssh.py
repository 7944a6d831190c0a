"""galion.facts.ssh: OpenSSH's algorithms, an image user's access.

Commands as literal strings, parsers fed recorded output (see test_facts.py).
"""

import subprocess

from galion.facts import ssh
from tests.unit.fact_coverage import covers

SSH_Q_DEBIAN_13 = """\
== kex
diffie-hellman-group1-sha1
diffie-hellman-group14-sha1
diffie-hellman-group14-sha256
diffie-hellman-group16-sha512
diffie-hellman-group18-sha512
diffie-hellman-group-exchange-sha1
diffie-hellman-group-exchange-sha256
ecdh-sha2-nistp256
ecdh-sha2-nistp384
ecdh-sha2-nistp521
curve25519-sha256
curve25519-sha256@libssh.org
sntrup761x25519-sha512
sntrup761x25519-sha512@openssh.com
mlkem768x25519-sha256
== cipher
3des-cbc
aes128-cbc
aes192-cbc
aes256-cbc
aes128-ctr
aes192-ctr
aes256-ctr
aes128-gcm@openssh.com
aes256-gcm@openssh.com
chacha20-poly1305@openssh.com
== mac
hmac-sha1
hmac-sha1-96
hmac-sha2-256
hmac-sha2-512
hmac-md5
hmac-md5-96
umac-64@openssh.com
umac-128@openssh.com
hmac-sha1-etm@openssh.com
hmac-sha1-96-etm@openssh.com
hmac-sha2-256-etm@openssh.com
hmac-sha2-512-etm@openssh.com
hmac-md5-etm@openssh.com
hmac-md5-96-etm@openssh.com
umac-64-etm@openssh.com
umac-128-etm@openssh.com
== key
ssh-ed25519
ssh-ed25519-cert-v01@openssh.com
sk-ssh-ed25519@openssh.com
sk-ssh-ed25519-cert-v01@openssh.com
ecdsa-sha2-nistp256
ecdsa-sha2-nistp256-cert-v01@openssh.com
ecdsa-sha2-nistp384
ecdsa-sha2-nistp384-cert-v01@openssh.com
ecdsa-sha2-nistp521
ecdsa-sha2-nistp521-cert-v01@openssh.com
sk-ecdsa-sha2-nistp256@openssh.com
sk-ecdsa-sha2-nistp256-cert-v01@openssh.com
webauthn-sk-ecdsa-sha2-nistp256@openssh.com
ssh-rsa
ssh-rsa-cert-v01@openssh.com
rsa-sha2-256
rsa-sha2-256-cert-v01@openssh.com
rsa-sha2-512
rsa-sha2-512-cert-v01@openssh.com
"""


@covers(ssh.OpensshAlgorithms)
class TestOpensshAlgorithms:
    def test_command_and_requirements(self):
        fact = ssh.OpensshAlgorithms()
        assert fact.command() == 'for q in kex cipher mac key; do echo "== $q"; ssh -Q $q; done'
        assert fact.requires_command() == "ssh"
        assert fact.default() == {}

    def test_process(self):
        found = ssh.OpensshAlgorithms().process(SSH_Q_DEBIAN_13.splitlines())
        assert list(found) == ["kex", "cipher", "mac", "key"]
        assert len(found["kex"]) == 15
        assert found["kex"][-1] == "mlkem768x25519-sha256"
        assert "sntrup761x25519-sha512@openssh.com" in found["kex"]
        assert found["cipher"][0] == "3des-cbc"
        assert found["cipher"][-1] == "chacha20-poly1305@openssh.com"
        assert len(found["mac"]) == 16
        assert "ssh-dss" not in found["key"]
        assert found["key"][:2] == ["ssh-ed25519", "ssh-ed25519-cert-v01@openssh.com"]

    def test_blank_lines_and_a_query_with_no_answer(self):
        output = ["== kex", "curve25519-sha256", "", "  ", "== cipher", "== mac", "hmac-sha2-256 "]
        assert ssh.OpensshAlgorithms().process(output) == {
            "kex": ["curve25519-sha256"],
            "cipher": [],
            "mac": ["hmac-sha2-256"],
        }

    def test_lines_before_any_header_are_ignored(self):
        output = ["unknown option -- Q", "== kex", "curve25519-sha256"]
        assert ssh.OpensshAlgorithms().process(output) == {"kex": ["curve25519-sha256"]}

    def test_empty_output(self):
        assert ssh.OpensshAlgorithms().process([]) == {}


@covers(ssh.ImageUserAccess)
class TestImageUserAccess:
    def test_command_is_valid_shell(self):
        command = ssh.ImageUserAccess().command("ubuntu")
        assert subprocess.run(["bash", "-n", "-c", command]).returncode == 0
        assert "getent passwd ubuntu" in command and "chage -l ubuntu" in command

    def test_a_user_that_does_not_exist_prints_nothing(self):
        command = ssh.ImageUserAccess().command("galion-no-such-user")
        out = subprocess.run(["sh", "-c", command], capture_output=True, text=True).stdout
        assert ssh.ImageUserAccess().process(out.splitlines()) is None

    def test_an_existing_user_is_read(self):
        out = subprocess.run(
            ["sh", "-c", ssh.ImageUserAccess().command("root")], capture_output=True, text=True
        ).stdout
        assert ssh.ImageUserAccess().process(out.splitlines()) is not None

    def test_an_open_cloud_image_user(self):
        out = ["1|never|/etc/sudoers.d/90-cloud-init-users "]
        assert ssh.ImageUserAccess().process(out) == {
            "keys": True,
            "sudo_files": ["/etc/sudoers.d/90-cloud-init-users"],
            "expired": False,
        }

    def test_a_closed_one_and_a_missing_one(self):
        closed = ssh.ImageUserAccess().process(["0|Jan 02, 1970|"])
        assert closed == {"keys": False, "sudo_files": [], "expired": True}
        assert ssh.ImageUserAccess().process([]) is None
