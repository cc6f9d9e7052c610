"""REST error answers: DRF's shapes, with a database race answered 409 rather than 500."""

from django.db import IntegrityError
from rest_framework import status
from rest_framework.response import Response
from rest_framework.views import exception_handler


def api_exception_handler(exc: Exception, context: dict) -> Response | None:
    if isinstance(exc, IntegrityError):
        return Response(
            {"detail": "The request conflicts with a concurrent change; retry it."},
            status=status.HTTP_409_CONFLICT,
        )
    return exception_handler(exc, context)
