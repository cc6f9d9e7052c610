"""Pages of the platform: the dashboard."""

from django.db.models import Sum
from django.http import HttpRequest, HttpResponse
from django.shortcuts import render

from brokers.models import Broker, ConsumerGroup, Topic
from djafka.models import Tenant


def home(request: HttpRequest) -> HttpResponse:
    """The dashboard: what the cluster holds and where to go next."""
    context = {
        "brokers": list(Broker.objects.all()),
        "tenant_count": Tenant.objects.count(),
        "topic_count": Topic.objects.count(),
        "partition_count": Topic.objects.aggregate(n=Sum("partition_count"))["n"] or 0,
        "group_count": ConsumerGroup.objects.count(),
    }
    return render(request, "home.html", context)
