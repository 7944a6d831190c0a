"""Facts of certbot: the names in a certificate lineage."""

from ._base import _Fact


class CertbotLineage(_Fact):
    """The names in a certbot certificate lineage, or None if it does not exist."""

    def command(self, lineage):
        return (
            f"test -f /etc/letsencrypt/live/{lineage}/cert.pem && openssl x509 -noout -ext "
            f"subjectAltName -in /etc/letsencrypt/live/{lineage}/cert.pem || true"
        )

    def process(self, output):
        text = " ".join(output)
        if "DNS:" not in text:
            return None
        return sorted(
            part.split(":", 1)[1].strip().rstrip(",")
            for part in text.split()
            if part.startswith("DNS:")
        )
