"""The error every command turns into exit status 2 with its message."""


class UsageError(ValueError):
    """Bad command-line input or tuned-example file; the message names the key."""
