"""Admin scoping: a tenant's admin users see and change only their tenant's objects.

Operators (superusers) see everything. A user with a TenantMembership is that tenant's admin:
for the models that use TenantScopedAdmin they get full rights inside their tenant and nothing
outside it, without Django model permissions to manage.
"""

from django.contrib import admin
from django.db.models import Model, QuerySet
from django.http import HttpRequest

from djafka.models import Tenant


def tenant_of(request: HttpRequest) -> Tenant | None:
    """The tenant a signed-in tenant admin is confined to; None for operators."""
    membership = getattr(request.user, "tenant_membership", None)
    return membership.tenant if membership is not None else None


class TenantScopedAdmin(admin.ModelAdmin):
    """A ModelAdmin whose objects belong to a tenant through ``tenant_lookup``."""

    tenant_lookup = "tenant"

    def get_queryset(self, request: HttpRequest) -> QuerySet:
        queryset = super().get_queryset(request)
        tenant = tenant_of(request)
        if tenant is not None:
            queryset = queryset.filter(**{self.tenant_lookup: tenant})
        return queryset

    def _is_tenant_admin(self, request: HttpRequest) -> bool:
        return request.user.is_active and request.user.is_staff and tenant_of(request) is not None

    def has_module_permission(self, request: HttpRequest) -> bool:
        return self._is_tenant_admin(request) or super().has_module_permission(request)

    def has_view_permission(self, request: HttpRequest, obj: Model | None = None) -> bool:
        return self._is_tenant_admin(request) or super().has_view_permission(request, obj)

    def has_add_permission(self, request: HttpRequest) -> bool:
        return self._is_tenant_admin(request) or super().has_add_permission(request)

    def has_change_permission(self, request: HttpRequest, obj: Model | None = None) -> bool:
        return self._is_tenant_admin(request) or super().has_change_permission(request, obj)

    def has_delete_permission(self, request: HttpRequest, obj: Model | None = None) -> bool:
        return self._is_tenant_admin(request) or super().has_delete_permission(request, obj)

    def get_list_filter(self, request: HttpRequest) -> list:
        filters = list(super().get_list_filter(request))
        if tenant_of(request) is not None:
            filters = [f for f in filters if f != self.tenant_lookup]
        return filters

    def get_list_display(self, request: HttpRequest) -> list:
        columns = list(super().get_list_display(request))
        if tenant_of(request) is not None:
            columns = [c for c in columns if c != "tenant"]
        return columns

    def get_fields(self, request: HttpRequest, obj: Model | None = None) -> list:
        fields = list(super().get_fields(request, obj))
        if tenant_of(request) is not None:
            fields = [f for f in fields if f != "tenant"]
        return fields

    def get_readonly_fields(self, request: HttpRequest, obj: Model | None = None) -> list:
        fields = list(super().get_readonly_fields(request, obj))
        if tenant_of(request) is not None:
            fields = [f for f in fields if f != "tenant"]
        return fields

    def save_model(self, request: HttpRequest, obj: Model, form: object, change: bool) -> None:
        tenant = tenant_of(request)
        if tenant is not None and self.tenant_lookup == "tenant":
            obj.tenant = tenant
        super().save_model(request, obj, form, change)
