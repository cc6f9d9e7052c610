"""The brokers app: cluster metadata models, admin and the REST topic API."""

from django.apps import AppConfig


class BrokersConfig(AppConfig):
    name = "brokers"
    verbose_name = "Cluster"
