"""What an attempt came to: the one value the retry policy, the request sequence, the outcome
writer and the buffer share."""

from dataclasses import dataclass, field

from forwarding.models import Outcome


@dataclass
class Result:
    """An attempt's outcome (see `Outcome`), the HTTP status and error behind it, the cause it is
    grouped by, how long to wait (rate limited), and what was dropped, cut or renamed."""

    outcome: str
    status: int | None = None
    error: str = ""
    cause: str = ""
    wait_seconds: float | None = None
    warnings: list = field(default_factory=list)
    rules: list = field(default_factory=list)  # [[rule id, revision]] the attempt applied

    @classmethod
    def waiting(cls, response, reason):
        """The user is unknown to Intercom (yet)."""
        return cls(Outcome.WAITING, response.status if response else None, reason, "user_unknown")


class Stop(Exception):
    """An unsuccessful answer that ends the attempt, carrying its Result."""

    def __init__(self, result):
        self.result = result
