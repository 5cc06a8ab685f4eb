"""The one exception type the command line turns into a clean message.

Library code raises `CharlmError` (or a subclass) for anything a user can cause:
bad input files, bad options, damaged checkpoints. Anything else is a bug and
should surface as one.
"""


class CharlmError(Exception):
    """A problem the user can fix; the message is shown as-is, on one line."""

    exit_code = 1


class UsageError(CharlmError):
    """Options or arguments that do not make sense together (exit code 2)."""

    exit_code = 2
