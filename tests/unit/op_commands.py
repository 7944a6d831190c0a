"""What the tests of galion.ops compare: operations' commands as text."""

from pyinfra.api import StringCommand
from pyinfra.api.command import FileUploadCommand


def raw(commands):
    """Shell strings of StringCommands; uploads as ("upload", dest, temp, content)."""
    out = []
    for command in commands:
        if isinstance(command, FileUploadCommand):
            out.append(
                ("upload", command.dest, command.remote_temp_filename, command.src.getvalue())
            )
        else:
            assert isinstance(command, StringCommand), command
            out.append(command.get_raw_value())
    return out
