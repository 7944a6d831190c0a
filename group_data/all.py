# Knobs every host sees, with their defaults; override per host or group in the
# inventory. Each knob is declared once, with its default, its one-line doc, its
# preflight check and its fix (galion/role.py: Knob): a role's own knobs in its module
# (operations/<role>: KNOBS), the knobs that more than one role reads in
# galion/shared_knobs.py. docs/KNOBS.md lists them all. One key lives in one place
# (tests/unit/test_roles.py checks), so group precedence never decides a value.
# Secrets never go here (see .env.example).

from galion.role import defaults as _defaults
from galion.shared_knobs import KNOBS as _SHARED
from operations import knobs as _role_knobs

globals().update(_defaults(_SHARED))
globals().update(_role_knobs())
