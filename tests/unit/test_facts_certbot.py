"""galion.facts.certbot: a certificate lineage's names.

Commands as literal strings, parsers fed recorded output (see test_facts.py).
"""

from galion.facts import certbot
from tests.unit.fact_coverage import covers


@covers(certbot.CertbotLineage)
class TestCertbotLineage:
    def test_command(self):
        assert certbot.CertbotLineage().command("galion.app") == (
            "test -f /etc/letsencrypt/live/galion.app/cert.pem && openssl x509 -noout -ext "
            "subjectAltName -in /etc/letsencrypt/live/galion.app/cert.pem || true"
        )

    def test_process(self):
        output = [
            "X509v3 Subject Alternative Name: ",
            "    DNS:www.galion.app, DNS:galion.app, DNS:api.galion.app",
        ]
        assert certbot.CertbotLineage().process(output) == [
            "api.galion.app",
            "galion.app",
            "www.galion.app",
        ]

    def test_single_name(self):
        output = ["X509v3 Subject Alternative Name: ", "    DNS:galion.studio"]
        assert certbot.CertbotLineage().process(output) == ["galion.studio"]

    def test_no_certificate_or_no_names(self):
        assert certbot.CertbotLineage().process([]) is None
        assert certbot.CertbotLineage().process(["No extensions matched"]) is None
        output = ["X509v3 Subject Alternative Name: ", "    IP Address:192.0.2.1"]
        assert certbot.CertbotLineage().process(output) is None
