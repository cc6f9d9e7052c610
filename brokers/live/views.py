"""The live tail page: pick a topic and watch its records arrive over the live feed."""

from django.contrib.auth.decorators import login_required
from django.http import HttpRequest, HttpResponse, HttpResponseForbidden
from django.shortcuts import render

from brokers.models import Topic
from djafka.models import Tenant


@login_required
def tail(request: HttpRequest) -> HttpResponse:
    """Tenant admins see their tenant's topics; operators (staff) pick a tenant first."""
    membership = getattr(request.user, "tenant_membership", None)
    tenants: list[Tenant] = []
    if membership is not None:
        tenant = membership.tenant
    elif request.user.is_staff:
        tenants = list(Tenant.objects.filter(is_active=True))
        wanted = request.GET.get("tenant")
        tenant = next((t for t in tenants if t.name == wanted), tenants[0] if tenants else None)
    else:
        return HttpResponseForbidden("The live tail is for tenant admins and operators.")
    topics = []
    if tenant is not None:
        topics = [
            {"name": name, "partitions": count}
            for name, count in Topic.objects.filter(tenant=tenant)
            .order_by("name")
            .values_list("name", "partition_count")
        ]
    return render(request, "live/tail.html", {
        "tenant": tenant,
        "tenants": tenants,
        "is_operator": membership is None,
        "topics": topics,
        "selected_topic": request.GET.get("topic", ""),
    })
