"""The driver-location demo's page: drivers moving live on a map of the city, over the live feed."""

import shlex

from django.contrib.auth.decorators import login_required
from django.http import HttpRequest, HttpResponse, HttpResponseForbidden
from django.shortcuts import render

from brokers.models import Topic
from brokers.topic_config import InvalidTopicName, validate_topic_name
from djafka.drivers import CITY, DEFAULT_TOPIC, DEMO_TENANT
from djafka.models import Tenant
from djafka.tenant_choice import choose_tenant


@login_required
def drivers(request: HttpRequest) -> HttpResponse:
    """Tenant admins watch their tenant's topic; operators (staff) pick a tenant, the demo
    tenant first. The page subscribes to the topic itself, over ``/ws/v1/live``."""
    choice = choose_tenant(request, preferred=DEMO_TENANT)
    if choice is None:
        return HttpResponseForbidden("The drivers demo is for tenant admins and operators.")
    tenant = choice.tenant
    topic = request.GET.get("topic") or DEFAULT_TOPIC
    try:
        validate_topic_name(topic)
        topic_error = ""
    except InvalidTopicName as exc:
        topic_error = str(exc)
    topic_exists = (
        not topic_error and tenant is not None
        and Topic.objects.filter(tenant=tenant, name=topic).exists()
    )
    return render(request, "demo/drivers.html", {
        "tenant": tenant,
        "tenants": choice.tenants,
        "is_operator": choice.is_operator,
        "topic": topic,
        "topic_error": topic_error,
        "topic_exists": topic_exists,
        "producer_command": producer_command(tenant, topic) if not topic_error else "",
        "page_config": {
            "city": CITY.layout(),
            # No subscription to a name Kafka would refuse: the page says why instead.
            "topic": None if topic_error else topic,
            "tenant": tenant.name if tenant else None,
            "is_operator": choice.is_operator,
        },
    })


def producer_command(tenant: Tenant | None, topic: str) -> str:
    """The shell command that produces to ``topic``, for the page's hint. Quoted for the shell
    although both names are validated: the page tells people to paste it into one."""
    argv = [".venv/bin/python", "manage.py", "drivers_demo"]
    if tenant is not None and tenant.name != DEMO_TENANT:
        argv += ["--tenant", tenant.name]
    if topic != DEFAULT_TOPIC:
        argv += ["--topic", topic]
    return shlex.join(argv)
