"""The driver-location demo's page: drivers moving live on a map of the city, over the live feed."""

from django.contrib.auth.decorators import login_required
from django.http import HttpRequest, HttpResponse, HttpResponseForbidden
from django.shortcuts import render

from brokers.models import Topic
from djafka.drivers import CITY, DEFAULT_TOPIC
from djafka.management.commands.bootstrap_demo import DEMO_TENANT
from djafka.models import Tenant


@login_required
def drivers(request: HttpRequest) -> HttpResponse:
    """Tenant admins watch their tenant's topic; operators (staff) pick a tenant, the demo
    tenant first. The page subscribes to the topic itself, over ``/ws/v1/live``."""
    membership = getattr(request.user, "tenant_membership", None)
    tenants: list[Tenant] = []
    if membership is not None:
        tenant: Tenant | None = membership.tenant
    elif request.user.is_staff:
        tenants = list(Tenant.objects.filter(is_active=True))
        wanted = request.GET.get("tenant") or DEMO_TENANT
        tenant = next((t for t in tenants if t.name == wanted), tenants[0] if tenants else None)
    else:
        return HttpResponseForbidden("The drivers demo is for tenant admins and operators.")
    topic = request.GET.get("topic") or DEFAULT_TOPIC
    topic_exists = tenant is not None and Topic.objects.filter(tenant=tenant, name=topic).exists()
    return render(request, "demo/drivers.html", {
        "tenant": tenant,
        "tenants": tenants,
        "is_operator": membership is None,
        "topic": topic,
        "topic_exists": topic_exists,
        "page_config": {
            "city": CITY.layout(),
            "topic": topic,
            "tenant": tenant.name if tenant else None,
            "is_operator": membership is None,
        },
    })
