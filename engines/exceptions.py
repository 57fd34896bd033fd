"""Domain errors of the engine lifecycle."""

from __future__ import annotations

from linkismanager.exceptions import ManagerError

__all__ = ["AdmissionError", "EngineNotFoundError", "IllegalTransitionError"]


class EngineNotFoundError(ManagerError):
    """No engine has the instance or id the request names."""


class IllegalTransitionError(ManagerError):
    """The engine is not in a status from which the requested change is allowed."""


class AdmissionError(ManagerError):
    """A new engine cannot be admitted: no suitable ECM, no capacity, or over the user's quota.

    ``can_retry`` says whether asking again later may succeed (capacity that frees up when other
    engines end), as opposed to requests that can never succeed as they stand.
    """

    def __init__(self, message: str, *, code: int | None = None, can_retry: bool = False) -> None:
        super().__init__(message, code=code)
        self.can_retry = can_retry
