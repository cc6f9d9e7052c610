"""Which tenant a web page shows: a tenant admin's own; an operator's pick of the active ones."""

from dataclasses import dataclass, field

from django.http import HttpRequest

from djafka.models import Tenant


@dataclass(frozen=True)
class TenantChoice:
    """The tenant whose data a page shows (None: no tenant exists yet) and, for operators,
    the tenants they may switch to."""

    tenant: Tenant | None
    is_operator: bool
    tenants: list[Tenant] = field(default_factory=list)


def choose_tenant(request: HttpRequest, preferred: str | None = None) -> TenantChoice | None:
    """A tenant admin gets their tenant whatever they ask; an operator (staff without a tenant)
    gets ``?tenant=``, else ``preferred``, else the first active tenant. None for anyone else:
    the page is not for them."""
    membership = getattr(request.user, "tenant_membership", None)
    if membership is not None:
        return TenantChoice(tenant=membership.tenant, is_operator=False)
    if not request.user.is_staff:
        return None
    tenants = list(Tenant.objects.filter(is_active=True))
    by_name = {t.name: t for t in tenants}
    wanted = [request.GET.get("tenant"), preferred]
    tenant = next((by_name[name] for name in wanted if name in by_name), None)
    return TenantChoice(
        tenant=tenant or (tenants[0] if tenants else None), is_operator=True, tenants=tenants
    )
