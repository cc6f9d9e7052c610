"""REST topic endpoints: list, create, describe, add partitions, change configs, delete."""

from django.db import transaction
from django.db.models import Prefetch, QuerySet
from drf_spectacular.utils import extend_schema
from rest_framework import status, viewsets
from rest_framework.exceptions import NotFound
from rest_framework.request import Request
from rest_framework.response import Response

from brokers import services
from brokers.api.serializers import (
    TopicCreateSerializer,
    TopicDetailSerializer,
    TopicSerializer,
    TopicUpdateSerializer,
)
from brokers.models import Partition, Replica, Topic

# REST status for each kind of topic error; anything not listed is a 400.
_STATUS_FOR = {
    services.TopicAlreadyExists: status.HTTP_409_CONFLICT,
    services.UnknownTopic: status.HTTP_404_NOT_FOUND,
}


def topic_error_response(exc: services.TopicError) -> Response:
    """A topic error as REST field errors, with Kafka's error name beside them."""
    if isinstance(exc, services.InvalidTopicConfig):
        body: dict = {"configs": exc.errors}
    else:
        body = {exc.field: [exc.message]}
    body["error"] = exc.error
    return Response(body, status=_STATUS_FOR.get(type(exc), status.HTTP_400_BAD_REQUEST))


class TopicViewSet(viewsets.ViewSet):
    """The calling tenant's topics; another tenant's topics do not exist here (404)."""

    lookup_field = "name"
    lookup_value_regex = "[^/]+"

    def _topics(self) -> QuerySet[Topic]:
        return Topic.objects.filter(tenant=self.request.user.tenant)

    def _get(self, name: str) -> Topic:
        replicas = Prefetch("replicas", queryset=Replica.objects.order_by("position"))
        partitions = Prefetch(
            "partitions", queryset=Partition.objects.prefetch_related(replicas).order_by("index")
        )
        topic = self._topics().prefetch_related(partitions).filter(name=name).first()
        if topic is None:
            raise NotFound(f"Topic '{name}' does not exist.")
        return topic

    @extend_schema(responses=TopicSerializer(many=True))
    def list(self, request: Request) -> Response:
        return Response(TopicSerializer(self._topics().order_by("name"), many=True).data)

    @extend_schema(request=TopicCreateSerializer, responses={201: TopicDetailSerializer})
    def create(self, request: Request) -> Response:
        data = TopicCreateSerializer(data=request.data)
        data.is_valid(raise_exception=True)
        try:
            topic = services.create_topic(request.user.tenant, **data.validated_data)
        except services.TopicError as exc:
            return topic_error_response(exc)
        return Response(
            TopicDetailSerializer(self._get(topic.name)).data, status=status.HTTP_201_CREATED
        )

    @extend_schema(responses=TopicDetailSerializer)
    def retrieve(self, request: Request, name: str) -> Response:
        return Response(TopicDetailSerializer(self._get(name)).data)

    @extend_schema(request=TopicUpdateSerializer, responses=TopicDetailSerializer)
    def partial_update(self, request: Request, name: str) -> Response:
        topic = self._get(name)
        data = TopicUpdateSerializer(data=request.data)
        data.is_valid(raise_exception=True)
        changes = data.validated_data
        try:
            with transaction.atomic():
                if "configs" in changes:
                    configs = changes["configs"]
                    services.alter_topic_configs(
                        topic,
                        set_configs={k: v for k, v in configs.items() if v is not None},
                        delete_configs=[k for k, v in configs.items() if v is None],
                    )
                # PATCH is idempotent: asking for the count the topic has changes nothing.
                if changes.get("partition_count", topic.partition_count) != topic.partition_count:
                    services.add_partitions(topic, changes["partition_count"])
        except services.TopicError as exc:
            return topic_error_response(exc)
        return Response(TopicDetailSerializer(self._get(name)).data)

    @extend_schema(responses={204: None})
    def destroy(self, request: Request, name: str) -> Response:
        services.delete_topic(self._get(name))
        return Response(status=status.HTTP_204_NO_CONTENT)
