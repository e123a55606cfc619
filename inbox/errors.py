"""The one application error type: a stable `code`, a human `message`, optional per-field details."""

from __future__ import annotations


class ApplicationError(Exception):
    def __init__(self, code: str, message: str, *, fields: dict[str, list[str]] | None = None, status: int = 400):
        super().__init__(message)
        self.code = code
        self.message = message
        self.fields = fields or {}
        self.status = status

    def as_dict(self) -> dict:
        return {"code": self.code, "message": self.message, "fields": self.fields}
