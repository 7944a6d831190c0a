"""pgBackRest, rclone (the dumps' copy off-site) and zstd from the distro, and the
directories the backups write."""

from pyinfra import host
from pyinfra.operations import apt, files


def install():
    apt.packages(
        name="Install pgBackRest and rclone",
        packages=["pgbackrest", "rclone", "zstd", "python3"],
        update=True,
        cache_time=3600,
        no_recommends=True,
    )
    for path, owner, mode in (
        (host.data.backups_local_repo, "postgres", "750"),
        ("/var/spool/pgbackrest", "postgres", "750"),
        ("/var/log/pgbackrest", "postgres", "750"),
        ("/var/lib/galion", "root", "755"),
        (host.data.backups_dump_dir, "postgres", "700"),
    ):
        files.directory(name=f"Directory {path}", path=path, user=owner, group=owner, mode=mode)
