"""Kafka's classic consumer-group protocol: the group state machine and its coordinator.

`group.py` is the pure state machine of one group (no Django, no asyncio: time is passed in);
`coordinator.py` runs groups on the event loop (barrier waits, timers) and writes their state
through a `GroupStore` (`records.py`; the Django one is brokers/node/group_store.py).
"""
