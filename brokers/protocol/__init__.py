"""The Kafka wire protocol of a broker node: framing, server, codec seam, one module per API key.

Read README.md beside this file for the map. Nothing in this package imports Django or Celery.
"""
