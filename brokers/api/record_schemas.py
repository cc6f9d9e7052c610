"""REST shapes of records: produce bodies and answers, read queries and answers, partitions.

The produce body is checked by brokers/api/record_format.py in one fast pass; the serializers
for it here describe it in the OpenAPI schema. Read queries are checked by these serializers.
"""

from django.conf import settings
from rest_framework import serializers

from brokers.api.record_format import FORMATS

FORMAT_HELP = (
    "string: UTF-8 text; json: any JSON value, sent as its JSON text (a key as compact JSON); "
    "base64: raw bytes. "
    "null is always a null key or value (a tombstone)."
)
# Kafka's offsets and timestamps are int64, partitions int32.
INT64_MAX = (1 << 63) - 1
INT32_MAX = (1 << 31) - 1


class ErrorSerializer(serializers.Serializer):
    error = serializers.CharField(help_text="Kafka's error name, e.g. UNKNOWN_TOPIC_OR_PARTITION.")
    detail = serializers.CharField()


class ProduceRecordSerializer(serializers.Serializer):
    key = serializers.JSONField(required=False, allow_null=True, help_text=FORMAT_HELP)
    value = serializers.JSONField(required=False, allow_null=True, help_text=FORMAT_HELP)
    headers = serializers.JSONField(
        required=False, help_text='{"name": "value"} or [["name", "value"], ...]'
    )
    timestamp = serializers.IntegerField(
        required=False, min_value=0, help_text="CreateTime in ms; default: now."
    )
    partition = serializers.IntegerField(
        required=False, min_value=0,
        help_text="Default: murmur2 of the key, as Kafka's Java client; spread for null keys.",
    )


class ProduceRequestSerializer(serializers.Serializer):
    records = ProduceRecordSerializer(many=True)
    key_format = serializers.ChoiceField(FORMATS, default="string")
    value_format = serializers.ChoiceField(FORMATS, default="json")
    acks = serializers.JSONField(default=1, help_text='0, 1 or "all".')


class ProduceResultSerializer(serializers.Serializer):
    partition = serializers.IntegerField(allow_null=True)
    offset = serializers.IntegerField(allow_null=True, help_text="null with acks=0.")
    error = serializers.CharField(required=False, help_text="Kafka's error name, if it failed.")
    message = serializers.CharField(required=False)


class ProduceResponseSerializer(serializers.Serializer):
    records = ProduceResultSerializer(many=True, help_text="One per record, in request order.")


class ReadQuerySerializer(serializers.Serializer):
    """Where a read starts (exactly one of offset, from, timestamp) and how much it takes."""

    offset = serializers.IntegerField(required=False, min_value=0, max_value=INT64_MAX)
    # "from" is a Python keyword: the field is declared under it below.
    timestamp = serializers.IntegerField(
        required=False, min_value=0, max_value=INT64_MAX,
        help_text="Start at the first record at or after it (ms).",
    )
    max_records = serializers.IntegerField(default=500, min_value=1, max_value=10_000)
    max_bytes = serializers.IntegerField(
        default=1024 * 1024, min_value=1, max_value=64 * 1024 * 1024,
        help_text="Stop after this many key and value bytes (at least one record is answered).",
    )
    timeout_ms = serializers.IntegerField(
        default=0, min_value=0,
        help_text="At the log end, wait this long for a record to arrive (long poll).",
    )
    key_format = serializers.ChoiceField(FORMATS, default="string")
    value_format = serializers.ChoiceField(FORMATS, default="json")

    def get_fields(self) -> dict:
        fields = super().get_fields()
        fields["from"] = serializers.ChoiceField(["earliest", "latest"], required=False)
        return fields

    def validate_timeout_ms(self, value: int) -> int:
        if value > settings.DJAFKA_REST_MAX_POLL_TIMEOUT_MS:
            raise serializers.ValidationError(
                f"At most {settings.DJAFKA_REST_MAX_POLL_TIMEOUT_MS} ms."
            )
        return value

    def validate(self, attrs: dict) -> dict:
        given = [f for f in ("offset", "from", "timestamp") if attrs.get(f) is not None]
        if len(given) != 1:
            raise serializers.ValidationError(
                "Give exactly one of offset, from (earliest or latest) and timestamp."
            )
        return attrs


class FetchedRecordSerializer(serializers.Serializer):
    partition = serializers.IntegerField()
    offset = serializers.IntegerField()
    timestamp = serializers.IntegerField()
    timestamp_type = serializers.ChoiceField(["CreateTime", "LogAppendTime"], allow_null=True)
    key = serializers.JSONField(allow_null=True)
    value = serializers.JSONField(allow_null=True)
    headers = serializers.ListField(
        child=serializers.ListField(), help_text="[name, value] pairs; a value that is not "
        'UTF-8 is given as {"base64": "..."}.'
    )
    key_format = serializers.CharField(
        required=False, help_text="Present when the key could not be given in the asked format."
    )
    value_format = serializers.CharField(
        required=False, help_text="Present when the value could not be given in the asked format."
    )


class ReadResponseSerializer(serializers.Serializer):
    topic = serializers.CharField()
    partition = serializers.IntegerField()
    records = FetchedRecordSerializer(many=True)
    next_offset = serializers.IntegerField(help_text="Where the next read continues.")
    log_start_offset = serializers.IntegerField()
    log_end_offset = serializers.IntegerField(help_text="The high watermark.")


class PartitionOffsetsSerializer(serializers.Serializer):
    partition = serializers.IntegerField()
    leader = serializers.IntegerField(allow_null=True)
    leader_epoch = serializers.IntegerField()
    replicas = serializers.ListField(child=serializers.IntegerField())
    isr = serializers.ListField(child=serializers.IntegerField())
    earliest_offset = serializers.IntegerField(help_text="The log start offset.")
    latest_offset = serializers.IntegerField(help_text="The log end offset (high watermark).")
