"""One error shape for the whole API: {"code", "message", "fields"}."""

from __future__ import annotations

from django.core.exceptions import PermissionDenied
from django.http import Http404
from rest_framework import exceptions, status
from rest_framework.response import Response
from rest_framework.views import exception_handler as drf_exception_handler

from inbox.errors import ApplicationError


def _fields(detail) -> dict[str, list[str]]:
    if isinstance(detail, dict):
        return {
            key: [str(item) for item in (value if isinstance(value, list) else [value])]
            for key, value in detail.items()
        }
    if isinstance(detail, list):
        return {"non_field_errors": [str(item) for item in detail]}
    return {}


def exception_handler(exc, context):
    if isinstance(exc, ApplicationError):
        return Response(exc.as_dict(), status=exc.status)
    if isinstance(exc, Http404):
        exc = exceptions.NotFound()
    elif isinstance(exc, PermissionDenied):
        exc = exceptions.PermissionDenied()
    response = drf_exception_handler(exc, context)
    if response is None:
        return None
    if isinstance(exc, exceptions.ValidationError):
        first_field, first_errors = next(iter(_fields(exc.detail).items()), ("", [""]))
        response.data = {
            "code": "invalid",
            "message": f"{first_field}: {first_errors[0]}" if first_field else "invalid input",
            "fields": _fields(exc.detail),
        }
        response.status_code = status.HTTP_422_UNPROCESSABLE_ENTITY
        return response
    code = exc.get_codes() if isinstance(exc, exceptions.APIException) else "error"
    response.data = {"code": code if isinstance(code, str) else "error", "message": str(exc.detail), "fields": {}}
    return response
