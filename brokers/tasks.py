"""Celery tasks of the brokers app: the controller's tick and broker-node control commands."""

import socket

from celery import shared_task

from brokers.controller.controller import run_controller_pass


@shared_task(name="brokers.controller_tick", ignore_result=True)
def controller_tick() -> bool:
    """Run one controller pass from the worker that received the tick (beat sends one a second)."""
    identity = f"{socket.gethostname()}:{controller_tick.request.hostname or 'local'}"
    return run_controller_pass(identity).changed


# --- Control commands a broker node consumes from its own queue, broker.<id>. They run in the
# node's process (its worker uses a thread pool), on the node that the queue names.


def _this_node():  # type: ignore[no-untyped-def]
    from brokers.node.node import current_node

    node = current_node()
    if node is None:
        raise RuntimeError("this worker is not a broker node (start it with --broker-id)")
    return node


@shared_task(name="brokers.node.reload_metadata", ignore_result=True)
def reload_metadata() -> int:
    """Reload cluster metadata now: opens replicas placed here, deletes ones moved away."""
    node = _this_node()
    node.refresh_metadata()
    return len(node.replicas.logs)


@shared_task(name="brokers.node.run_log_maintenance", ignore_result=True)
def run_log_maintenance() -> dict[str, int]:
    """Apply retention (and compaction for compacted topics) to every replica now."""
    return _this_node().run_log_maintenance()


def send_to_broker(task, broker_id: int) -> None:  # type: ignore[no-untyped-def]
    """Queue a control command for one broker node."""
    task.apply_async(queue=f"broker.{broker_id}")
