"""The one base class of every error a user can fix, and the one-line rule for its message.

A ``UserError`` says in one line what is wrong (naming the parameter, file or line)
and what to do; the batch runner prints that line and exits, never a traceback. Any
other exception is a bug and keeps its traceback.
"""

from __future__ import annotations


class UserError(Exception):
    """A problem the user can fix; ``str(error)`` is one line naming the fix."""

    def __init__(self, message: str, *args):
        super().__init__(" ".join(str(message).split()), *args)


def one_line(text, limit: int = 400) -> str:
    """``text`` (or an exception's message) with its whitespace collapsed to single
    spaces, cut to ``limit`` characters with an ellipsis."""
    text = " ".join(str(text).split())
    return text if len(text) <= limit else text[: limit - 1] + "…"
