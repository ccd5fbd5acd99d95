"""The one error type of the ingestion API: it becomes a `{"code", "message"}` JSON response."""


class IngestionError(Exception):
    """A request the API refuses; `status`, `code` and `message` become the response."""

    def __init__(self, status, code, message, headers=None):
        super().__init__(message)
        self.status = status
        self.code = code
        self.message = message
        self.headers = headers or {}

    def as_json(self):
        """The response body."""
        return {"code": self.code, "message": self.message}


def invalid_request(message):
    """Malformed envelope: bad JSON, not an object, bad gzip (400)."""
    return IngestionError(400, "invalid_request", message)


def too_large(message):
    """Over a size limit (400, as Segment answers; no client retries it)."""
    return IngestionError(400, "request_too_large", message)


def too_many_messages(message):
    """A batch over RELAY_MAX_BATCH_MESSAGES, refused whole (400; no client retries it)."""
    return IngestionError(400, "too_many_messages", message)


def invalid_write_key(message):
    """Missing, unknown or inactive write key (401; no client retries it)."""
    return IngestionError(401, "invalid_write_key", message)


def rate_limited(message, retry_after):
    """Over the write key's rate limit (429; every client waits `Retry-After` seconds and retries)."""
    return IngestionError(429, "rate_limited", message, headers={"Retry-After": str(retry_after)})
