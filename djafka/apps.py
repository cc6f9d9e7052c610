"""The platform app: tenants, API keys, quotas and the dashboard."""

from django.apps import AppConfig


class DjafkaConfig(AppConfig):
    name = "djafka"
    verbose_name = "Tenants and keys"

    def ready(self) -> None:
        # drf-spectacular finds schema extensions by their being imported.
        from djafka import schema  # noqa: F401
