"""Intercom's errors as values the workspace raises and the pipeline turns into answers."""


class ApiError(Exception):
    """An error answer in Intercom's envelope: HTTP status, error code and message."""

    def __init__(self, status, code, message):
        super().__init__(f"{status} {code}: {message}")
        self.status, self.code, self.message = status, code, message


def not_found_user():
    """Intercom's answer for a contact it cannot find (events, attach, update)."""
    return ApiError(404, "not_found", "User Not Found")
