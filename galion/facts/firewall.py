"""Facts of the firewall: UFW's added rules and its status."""

import re
from typing import ClassVar

from ._base import _Fact


class UfwAddedRules(_Fact):
    """Rules added with `ufw`, as the command lines ufw itself prints (without "ufw ")."""

    required_command = "ufw"
    default_value: ClassVar[list] = []

    def command(self):
        return "ufw show added"

    def process(self, output):
        return [line[4:].strip() for line in output if line.startswith("ufw ")]


class UfwStatus(_Fact):
    """`{"active": bool, "incoming": "deny", "outgoing": "allow", "routed": ...}`."""

    required_command = "ufw"
    default_value: ClassVar[dict] = {"active": False}

    def command(self):
        return "ufw status verbose"

    def process(self, output):
        status = {"active": False}
        for line in output:
            if line.startswith("Status:"):
                status["active"] = line.split(":", 1)[1].strip() == "active"
            if line.startswith("Default:"):
                for part in line.split(":", 1)[1].split(","):
                    m = re.match(r"\s*(\w+) \((\w+)\)", part)
                    if m:
                        status[m.group(2)] = m.group(1)
        return status
