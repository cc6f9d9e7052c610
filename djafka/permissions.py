"""REST permissions: every endpoint acts for exactly one tenant."""

from typing import TYPE_CHECKING

from rest_framework import permissions

from djafka.authentication import TenantPrincipal

if TYPE_CHECKING:  # rest_framework.views imports this module through the settings
    from rest_framework.request import Request
    from rest_framework.views import APIView


class IsTenantMember(permissions.BasePermission):
    """Allow callers authenticated as a tenant (by key or tenant admin session)."""

    message = "Authenticate with 'Authorization: Bearer <api key>'."

    def has_permission(self, request: "Request", view: "APIView") -> bool:
        return isinstance(request.user, TenantPrincipal)
