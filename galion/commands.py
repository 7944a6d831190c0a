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


# Never a restart: a graceful reload keeps connections, and only a config that passes
# nginx -t as a whole is loaded.
NGINX_RELOAD = "nginx -t -q && systemctl reload nginx"


def nginx_test_command(relative: str) -> str:
    """nginx -t on a scratch copy of /etc/nginx with the staged file in place of the live
    one (`relative`: the file's path under /etc/nginx)."""
    return (
        f"d=$(mktemp -d) && cp -a /etc/nginx/. $d/ && cp {{staged}} $d/{relative} && "
        f"rm -f $d/{relative}.galion-new && grep -rlZ /etc/nginx/ $d | xargs -0 -r sed -i "
        '"s#/etc/nginx/#$d/#g" && nginx -t -q -c $d/nginx.conf; r=$?; rm -rf $d; exit $r'
    )
