"""Shell command builders more than one role uses. Each returns the command as a
string; tests/unit/test_commands.py checks them without a host."""


def fail2ban_jail_test(jail_file: str) -> str:
    """config_file validation of a jail file (a path under /etc/fail2ban): the whole
    fail2ban configuration is tested, in a scratch copy, with the staged jail in place of
    the live one."""
    return (
        "d=$(mktemp -d) && cp -a /etc/fail2ban/. $d/ && cp {staged} $d/"
        + jail_file
        + " && rm -f $d/jail.d/*.galion-new && fail2ban-client -c $d -t >/dev/null; "
        "r=$?; rm -rf $d; exit $r"
    )
