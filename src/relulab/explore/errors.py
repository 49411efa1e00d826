"""The one error the explorer's endpoints answer with 400: a message (the library's own) and the field it is about."""

from __future__ import annotations


class FieldError(ValueError):
    """A bad value in one field of a request; ``field`` names it so the page can show the message next to it."""

    def __init__(self, field: str, message: str) -> None:
        super().__init__(message)
        self.field = field
