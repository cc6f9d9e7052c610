"""REST shapes of topics and partitions."""

from drf_spectacular.utils import extend_schema_field
from rest_framework import serializers

from brokers.models import Partition, Topic
from brokers.topic_config import TOPIC_CONFIGS

CONFIGS_HELP = 'Topic config overrides by Kafka name, e.g. {"retention.ms": "3600000"}. ' + (
    "Known: " + ", ".join(sorted(TOPIC_CONFIGS)) + "."
)


class PartitionSerializer(serializers.ModelSerializer):
    partition = serializers.IntegerField(source="index")
    leader = serializers.IntegerField(source="leader_id", allow_null=True)
    replicas = serializers.SerializerMethodField()
    isr = serializers.ListField(child=serializers.IntegerField())

    class Meta:
        model = Partition
        fields = ["partition", "leader", "leader_epoch", "replicas", "isr"]

    def get_replicas(self, partition: Partition) -> list[int]:
        return partition.replica_ids


class TopicSerializer(serializers.ModelSerializer):
    """A topic as listed: its name, size and config overrides."""

    class Meta:
        model = Topic
        fields = [
            "name",
            "topic_id",
            "partition_count",
            "replication_factor",
            "configs",
            "created_at",
        ]
        read_only_fields = fields


class TopicDetailSerializer(TopicSerializer):
    """A topic as described: with its partitions, leaders and replicas, and every config."""

    partitions = PartitionSerializer(many=True, read_only=True)
    effective_configs = serializers.DictField(child=serializers.CharField(), read_only=True)

    class Meta(TopicSerializer.Meta):
        fields = [*TopicSerializer.Meta.fields, "effective_configs", "partitions"]
        read_only_fields = fields


@extend_schema_field({"oneOf": [{"type": "string"}, {"type": "number"}, {"type": "boolean"}]})
class ConfigValueField(serializers.Field):
    """A config value: a string, number or boolean (sent on as Kafka's string form)."""

    def to_internal_value(self, data: object) -> object:
        if data is not None and not isinstance(data, (str, int, float, bool)):
            raise serializers.ValidationError("Give the value as a string or a number.")
        return data

    def to_representation(self, value: object) -> object:
        return value


class TopicCreateSerializer(serializers.Serializer):
    name = serializers.CharField(max_length=300, trim_whitespace=False)
    partition_count = serializers.IntegerField(default=1, min_value=1)
    replication_factor = serializers.IntegerField(default=1, min_value=1, max_value=32767)
    configs = serializers.DictField(child=ConfigValueField(), default=dict, help_text=CONFIGS_HELP)


class TopicUpdateSerializer(serializers.Serializer):
    partition_count = serializers.IntegerField(
        required=False, min_value=1, help_text="New total; partitions can be added, not removed."
    )
    configs = serializers.DictField(
        child=ConfigValueField(allow_null=True),
        required=False,
        help_text=CONFIGS_HELP + " A null value removes the override.",
    )

    def validate(self, attrs: dict) -> dict:
        if not attrs:
            raise serializers.ValidationError("Send partition_count, configs or both.")
        return attrs
