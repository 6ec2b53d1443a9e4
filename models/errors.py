"""Errors in what a user gave (a folder, a file, a name), as opposed to faults of the code.

The command line reports these as one line with what to do (streams/cli/main.py); the worker
never sees them, because it checks its inputs at start.
"""


class UserInputError(ValueError):
    """Something the user can fix; the message says what and how."""
