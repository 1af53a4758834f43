"""HubSpot-shaped errors: the exception handlers raise, and the JSON bodies they answer with.

Every error body has HubSpot's shape::

    {"status": "error", "message": "...", "correlationId": "<uuid>", "category": "VALIDATION_ERROR"}
"""

from __future__ import annotations

import uuid
from collections.abc import Mapping
from typing import Any

import orjson
from starlette.responses import Response


class JSONResponse(Response):
    """A JSON response rendered by orjson."""

    media_type = "application/json"

    def render(self, content: Any) -> bytes:
        return orjson.dumps(content)


class HubSpotError(Exception):
    """An error answered with HubSpot's error body and category."""

    def __init__(self, status: int, category: str, message: str, *,
                 headers: Mapping[str, str] | None = None, **extra: Any) -> None:
        super().__init__(message)
        self.status = status
        self.category = category
        self.message = message
        self.headers = dict(headers or {})
        self.extra = extra

    def response(self) -> JSONResponse:
        return JSONResponse(error_body(self.category, self.message, **self.extra),
                            status_code=self.status, headers=self.headers)


def error_body(category: str, message: str, **extra: Any) -> dict[str, Any]:
    """HubSpot's error body, with a fresh correlation id."""
    return {"status": "error", "message": message, "correlationId": str(uuid.uuid4()),
            "category": category, **extra}


def invalid(message: str) -> HubSpotError:
    """A 400 VALIDATION_ERROR, HubSpot's answer to a malformed request."""
    return HubSpotError(400, "VALIDATION_ERROR", message)
