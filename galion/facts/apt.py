"""Facts of apt: the version a package would be installed at."""

from ._base import _Fact, _first_line


class AptCandidate(_Fact):
    """The version apt would install for a package, or None if no source has it."""

    def command(self, package):
        return f"apt-cache policy {package} 2>/dev/null | awk '/Candidate:/ {{print $2}}'"

    def process(self, output):
        value = _first_line(output)
        return None if value in ("", "(none)") else value
