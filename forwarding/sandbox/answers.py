"""The sandbox's HTTP answers, as values (its API and its control API both make them)."""

import json
from dataclasses import dataclass, field


@dataclass
class Answer:
    """An HTTP answer; `drop` means close the connection without one."""

    status: int
    body: bytes = b""
    headers: dict = field(default_factory=dict)
    drop: bool = False

    @classmethod
    def json(cls, status, payload, headers=None):
        body = b"" if payload is None else json.dumps(payload).encode()
        content = {"Content-Type": "application/json; charset=utf-8"} if payload is not None else {}
        return cls(status, body, {**content, **(headers or {})})
