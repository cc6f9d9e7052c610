"""The OpenAPI schema: its view, and how it describes our authentication (keys, sessions)."""

import threading
from typing import Any

from django.conf import settings
from django.utils import translation
from drf_spectacular.extensions import OpenApiAuthenticationExtension
from drf_spectacular.plumbing import build_bearer_security_scheme_object
from drf_spectacular.views import SpectacularAPIView
from rest_framework.request import Request
from rest_framework.response import Response


class SchemaView(SpectacularAPIView):
    """The schema, generated once per process and language, under a lock.

    drf-spectacular's generator keeps its state in globals: two generations at once (first
    requests arriving together on a threaded server) fail with a 500
    (tfranzel/drf-spectacular#1123). The schema is public and depends only on the code, so
    one generation serves every later request.
    """

    _lock = threading.Lock()
    _generated: dict[tuple[Any, str | None], Any] = {}

    def _get_schema_response(self, request: Request) -> Response:
        version = self.api_version or request.version or self._get_version_parameter(request)
        key = (version, translation.get_language())
        with self._lock:
            if key not in self._generated:
                self._generated[key] = super()._get_schema_response(request).data
        return Response(
            data=self._generated[key],
            headers={"Content-Disposition":
                     f'inline; filename="{self._get_filename(request, version)}"'},
        )


class ApiKeyScheme(OpenApiAuthenticationExtension):
    """``Authorization: Bearer <prefix>.<secret>``: Swagger UI's Authorize button takes a key."""

    target_class = "djafka.authentication.ApiKeyAuthentication"
    name = "apiKey"

    def get_security_definition(self, auto_schema: object) -> dict:
        return build_bearer_security_scheme_object(
            header_name="Authorization", token_prefix="Bearer", bearer_format="prefix.secret"
        )


class TenantSessionScheme(OpenApiAuthenticationExtension):
    """A tenant admin's admin session (the browsable API, the pages)."""

    target_class = "djafka.authentication.TenantSessionAuthentication"
    name = "adminSession"

    def get_security_definition(self, auto_schema: object) -> dict:
        return {"type": "apiKey", "in": "cookie", "name": settings.SESSION_COOKIE_NAME}
