"""Every error the API sends is an RFC 9457 problem document (`application/problem+json`).

`type` is `about:blank` (the status says it all; RFC 9457 §4.2.1), `title` the status phrase, `detail` the
explanation in words. Input that does not validate is always 422, whatever the field or the check that failed
(a bad `limit`, an unknown `severity`, a forged continuation token, a body that is not JSON): the `errors` member
lists each failing field as `{"in": "query" | "path" | "body" | "header", "field": name, "detail": message}`.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from http import HTTPStatus
from typing import Any

from fastapi.exceptions import RequestValidationError
from starlette.responses import JSONResponse

PROBLEM_JSON = "application/problem+json"
INVALID = 422


class InvalidInput(Exception):
    """Input the API cannot use: answered 422 with one entry per failing field."""

    def __init__(self, errors: Sequence[Mapping[str, str | None]]) -> None:
        super().__init__("; ".join(_describe(error) for error in errors))
        self.errors = [dict(error) for error in errors]


def invalid(location: str, field: str | None, detail: str) -> InvalidInput:
    """One failing field (`field` None: the input as a whole, e.g. a body that is not JSON)."""
    return InvalidInput([{"in": location, "field": field, "detail": detail}])


def problem(status: int, detail: str, *, errors: Iterable[Mapping[str, Any]] | None = None,
            headers: Mapping[str, str] | None = None) -> JSONResponse:
    body: dict[str, Any] = {"type": "about:blank", "title": HTTPStatus(status).phrase, "status": status,
                            "detail": detail}
    if errors is not None:
        body["errors"] = list(errors)
    return JSONResponse(body, status_code=status, headers=dict(headers or {}), media_type=PROBLEM_JSON)


def invalid_input_problem(error: InvalidInput) -> JSONResponse:
    return problem(INVALID, str(error), errors=error.errors)


def validation_problem(error: RequestValidationError) -> JSONResponse:
    """FastAPI's request validation errors (pydantic's) in the same shape as InvalidInput."""
    return invalid_input_problem(InvalidInput([_field_error(item) for item in error.errors()]))


def _field_error(item: Mapping[str, Any]) -> dict[str, str | None]:
    location, *path = [str(part) for part in item.get("loc", ())] or ["body"]
    if item.get("type") == "json_invalid":
        reason = (item.get("ctx") or {}).get("error") or item.get("msg")
        return {"in": location, "field": None, "detail": f"the body is not valid JSON ({reason})"}
    return {"in": location, "field": ".".join(path) or None, "detail": str(item.get("msg", "invalid"))}


def _describe(error: Mapping[str, str | None]) -> str:
    field = error.get("field")
    return f"{field}: {error['detail']}" if field else str(error["detail"])
