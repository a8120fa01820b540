"""The one error type operators see: a message, no traceback."""


class OperatorError(Exception):
    """A problem the operator can fix; the CLI prints its message and exits 1."""
