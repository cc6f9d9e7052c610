"""App config for streams."""

from django.apps import AppConfig


class StreamsConfig(AppConfig):
    name = "streams"
