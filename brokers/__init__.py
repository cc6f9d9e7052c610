"""Broker nodes and cluster metadata: storage, wire protocol, replication, controller."""
