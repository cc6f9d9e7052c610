"""App config for connectors."""

from django.apps import AppConfig


class ConnectorsConfig(AppConfig):
    name = "connectors"
