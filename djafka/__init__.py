"""Djafka: an event streaming platform in the spirit of Apache Kafka, run as a Django site."""

from djafka.celery import app as celery_app

__all__ = ["celery_app"]
