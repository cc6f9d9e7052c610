"""Websocket routes of the live feed (mounted by djafka/asgi.py)."""

from django.urls import path

from brokers.live.consumers import LiveFeedConsumer

websocket_urlpatterns = [
    path("ws/v1/live", LiveFeedConsumer.as_asgi()),
]
