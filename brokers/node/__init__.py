"""The broker node: a Celery worker that owns partition replicas and serves the Kafka protocol."""
