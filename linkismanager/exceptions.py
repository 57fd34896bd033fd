"""Domain errors of the manager. They know nothing of HTTP; the API maps them to envelopes."""

from __future__ import annotations

__all__ = ["ManagerError"]


class ManagerError(Exception):
    """A request the manager refuses, with the Linkis error code when Linkis has one.

    ``code`` selects Linkis' coded message form, ``error code(错误码): N, error message(错误信息): text.``
    """

    def __init__(self, message: str, *, code: int | None = None) -> None:
        super().__init__(message)
        self.message = message
        self.code = code
