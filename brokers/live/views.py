"""The live tail page: pick a topic and watch its records arrive over the live feed."""

from django.contrib.auth.decorators import login_required
from django.http import HttpRequest, HttpResponse, HttpResponseForbidden
from django.shortcuts import render

from brokers.models import Topic
from djafka.tenant_choice import choose_tenant


@login_required
def tail(request: HttpRequest) -> HttpResponse:
    """Tenant admins see their tenant's topics; operators (staff) pick a tenant first."""
    choice = choose_tenant(request)
    if choice is None:
        return HttpResponseForbidden("The live tail is for tenant admins and operators.")
    topics = []
    if choice.tenant is not None:
        topics = [
            {"name": name, "partitions": count}
            for name, count in Topic.objects.filter(tenant=choice.tenant)
            .order_by("name")
            .values_list("name", "partition_count")
        ]
    return render(request, "live/tail.html", {
        "tenant": choice.tenant,
        "tenants": choice.tenants,
        "is_operator": choice.is_operator,
        "topics": topics,
        "selected_topic": request.GET.get("topic", ""),
    })
