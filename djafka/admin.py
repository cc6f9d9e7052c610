"""Admin for tenants, their admin users and their API keys."""

from django.contrib import admin, messages
from django.db.models import Count, Q, QuerySet
from django.http import HttpRequest

from djafka.admin_scoping import TenantScopedAdmin, tenant_of
from djafka.models import ApiKey, Tenant, TenantMembership


class TenantMembershipInline(admin.TabularInline):
    model = TenantMembership
    extra = 0
    autocomplete_fields = ["user"]
    verbose_name = "tenant admin user"


@admin.register(Tenant)
class TenantAdmin(admin.ModelAdmin):
    list_display = [
        "name",
        "display_name",
        "is_active",
        "topic_count",
        "active_key_count",
        "max_partitions",
        "created_at",
    ]
    list_filter = ["is_active"]
    search_fields = ["name", "display_name"]
    inlines = [TenantMembershipInline]
    fieldsets = [
        (None, {"fields": ["name", "display_name", "is_active"]}),
        (
            "Quotas (blank: no limit)",
            {
                "fields": [
                    "max_partitions",
                    "max_storage_bytes",
                    "produce_byte_rate",
                    "consume_byte_rate",
                ]
            },
        ),
    ]

    def get_queryset(self, request: HttpRequest) -> QuerySet[Tenant]:
        queryset = (
            super()
            .get_queryset(request)
            .annotate(
                _topics=Count("topics", distinct=True),
                _keys=Count("api_keys", filter=Q(api_keys__revoked_at__isnull=True), distinct=True),
            )
        )
        tenant = tenant_of(request)
        return queryset.filter(pk=tenant.pk) if tenant is not None else queryset

    @admin.display(description="topics", ordering="_topics")
    def topic_count(self, tenant: Tenant) -> int:
        return tenant._topics

    @admin.display(description="active keys", ordering="_keys")
    def active_key_count(self, tenant: Tenant) -> int:
        return tenant._keys

    # A tenant admin may look at their tenant (and its quotas) but not change it.
    def has_module_permission(self, request: HttpRequest) -> bool:
        return tenant_of(request) is not None or super().has_module_permission(request)

    def has_view_permission(self, request: HttpRequest, obj: Tenant | None = None) -> bool:
        return tenant_of(request) is not None or super().has_view_permission(request, obj)

    def get_inlines(self, request: HttpRequest, obj: Tenant | None) -> list:
        return [] if tenant_of(request) is not None else super().get_inlines(request, obj)


@admin.register(ApiKey)
class ApiKeyAdmin(TenantScopedAdmin):
    list_display = ["prefix", "name", "tenant", "created_at", "last_used_at", "is_active"]
    list_filter = ["tenant", ("revoked_at", admin.EmptyFieldListFilter)]
    search_fields = ["prefix", "name", "tenant__name"]
    readonly_fields = ["prefix", "created_at", "last_used_at", "revoked_at"]
    fields = ["tenant", "name", "prefix", "created_at", "last_used_at", "revoked_at"]
    actions = ["revoke_keys"]

    @admin.display(description="active", boolean=True)
    def is_active(self, api_key: ApiKey) -> bool:
        return not api_key.is_revoked

    def get_readonly_fields(self, request: HttpRequest, obj: ApiKey | None = None) -> list:
        fields = super().get_readonly_fields(request, obj)
        # A key's tenant is fixed once it exists.
        return [*fields, "tenant"] if obj is not None and tenant_of(request) is None else fields

    def formfield_for_foreignkey(self, db_field, request, **kwargs):  # type: ignore[no-untyped-def]
        if db_field.name == "tenant":
            kwargs["queryset"] = Tenant.objects.filter(is_active=True)
        return super().formfield_for_foreignkey(db_field, request, **kwargs)

    def save_model(self, request: HttpRequest, obj: ApiKey, form: object, change: bool) -> None:
        token = None if change else obj.set_new_secret()
        super().save_model(request, obj, form, change)
        if token is not None:
            messages.warning(
                request,
                f"API key created. Copy it now, it will not be shown again: {token}   "
                f"(Kafka clients: SASL/PLAIN username {obj.prefix}, password "
                f"{token.split('.', 1)[1]})",
            )

    @admin.action(description="Revoke selected API keys")
    def revoke_keys(self, request: HttpRequest, queryset: QuerySet[ApiKey]) -> None:
        revoked = 0
        for api_key in queryset.filter(revoked_at__isnull=True):
            api_key.revoke()
            revoked += 1
        self.message_user(request, f"Revoked {revoked} API key(s).")
