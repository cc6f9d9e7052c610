"""REST endpoints of the platform: who am I, and the tenant's API keys."""

from django.db.models import QuerySet
from drf_spectacular.utils import OpenApiParameter, extend_schema, inline_serializer
from rest_framework import mixins, serializers, status, viewsets
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.views import APIView

from djafka.models import ApiKey


class TenantSerializer(serializers.Serializer):
    name = serializers.CharField()
    display_name = serializers.CharField()
    max_partitions = serializers.IntegerField(allow_null=True)
    max_storage_bytes = serializers.IntegerField(allow_null=True)
    produce_byte_rate = serializers.IntegerField(allow_null=True)
    consume_byte_rate = serializers.IntegerField(allow_null=True)


class WhoAmIView(APIView):
    """The tenant the caller acts for, with its quotas."""

    @extend_schema(
        responses=inline_serializer(
            "WhoAmI",
            {"tenant": TenantSerializer(), "api_key": serializers.CharField(allow_null=True)},
        )
    )
    def get(self, request: Request) -> Response:
        principal = request.user
        return Response(
            {
                "tenant": TenantSerializer(principal.tenant).data,
                "api_key": principal.api_key.prefix if principal.api_key else None,
            }
        )


class ApiKeySerializer(serializers.ModelSerializer):
    class Meta:
        model = ApiKey
        fields = ["prefix", "name", "created_at", "last_used_at", "revoked_at"]
        read_only_fields = ["prefix", "created_at", "last_used_at", "revoked_at"]


class IssuedKeySerializer(ApiKeySerializer):
    token = serializers.CharField(
        read_only=True, help_text="Shown once: '<prefix>.<secret>'. It cannot be seen again."
    )

    class Meta(ApiKeySerializer.Meta):
        fields = [*ApiKeySerializer.Meta.fields, "token"]


@extend_schema(parameters=[OpenApiParameter(
    "prefix", str, OpenApiParameter.PATH, description="The key's prefix (its public part)."
)])
class ApiKeyViewSet(
    mixins.ListModelMixin,
    mixins.RetrieveModelMixin,
    mixins.DestroyModelMixin,
    viewsets.GenericViewSet,
):
    """The tenant's API keys. Creating one shows its token once; deleting one revokes it."""

    serializer_class = ApiKeySerializer
    lookup_field = "prefix"

    def get_queryset(self) -> QuerySet[ApiKey]:
        return ApiKey.objects.filter(tenant=self.request.user.tenant)

    @extend_schema(request=ApiKeySerializer, responses={201: IssuedKeySerializer})
    def create(self, request: Request) -> Response:
        data = ApiKeySerializer(data=request.data)
        data.is_valid(raise_exception=True)
        issued = ApiKey.issue(request.user.tenant, data.validated_data["name"])
        body = ApiKeySerializer(issued.api_key).data | {"token": issued.token}
        return Response(body, status=status.HTTP_201_CREATED)

    def perform_destroy(self, instance: ApiKey) -> None:
        instance.revoke()
