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
    """The schema, generated one at a time, and once per process in the site's languages.

    drf-spectacular's generator keeps its state in globals: two generations at once (first
    requests arriving together on a threaded server) fail with a 500
    (tfranzel/drf-spectacular#1123). The schema is public and depends only on the code (the
    API is not versioned), so one generation serves every later request. Only the site's own
    languages are kept: anyone may ask ``?lang=`` anything.
    """

    _lock = threading.Lock()
    _generated: dict[str, Any] = {}

    def _get_schema_response(self, request: Request) -> Response:
        try:
            language = translation.get_supported_language_variant(translation.get_language())
        except LookupError:
            language = None
        with self._lock:
            schema = self._generated.get(language) if language else None
            if schema is None:
                schema = super()._get_schema_response(request).data
                if language:
                    self._generated[language] = schema
        return Response(
            data=schema,
            headers={"Content-Disposition":
                     f'inline; filename="{self._get_filename(request, None)}"'},
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
