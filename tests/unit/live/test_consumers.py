"""A socket's sender writes its outbox's frames, in order, to the ASGI server's own send: past
Channels' session wrapper, which has nothing to do for a websocket frame, never past a wrapper
it does not know."""

import asyncio

import orjson
from channels.sessions import InstanceSessionWrapper

from brokers.live import protocol
from brokers.live.consumers import LiveFeedConsumer, server_send
from brokers.live.outbox import Outbox


class Server:
    """An ASGI server's ``send``: what it was handed."""

    def __init__(self):
        self.messages: list[dict] = []
        self.has_both = asyncio.Event()

    async def send(self, message: dict) -> None:
        self.messages.append(message)
        if len(self.messages) == 2:
            self.has_both.set()


async def frames_written(send_given_to_the_consumer, server: Server) -> list[dict]:
    """Two frames pushed into a consumer's outbox, as its sender hands them to the server."""
    consumer = LiveFeedConsumer()
    consumer.base_send = send_given_to_the_consumer
    consumer.outbox = Outbox(max_records=100, max_bytes=1 << 20)
    consumer.outbox.push_frame(protocol.frame("error", message="first"))
    consumer.outbox.push_frame(protocol.frame("error", message="second"))
    sender = asyncio.create_task(consumer._send_frames())
    both = asyncio.create_task(server.has_both.wait())
    # The sender ends only when a send fails: then the frames never reached the server.
    await asyncio.wait({sender, both}, return_when=asyncio.FIRST_COMPLETED)
    assert not sender.done(), "the sender stopped: a send failed"
    sender.cancel()
    return server.messages


def test_frames_reach_the_server_in_order_past_channels_session_wrapper():
    server = Server()

    async def run() -> list[dict]:
        # As AuthMiddlewareStack hands the consumer its send. The session is left unresolved:
        # the wrapper's own send would fail reading it, so the frames arrive only if the
        # sender writes beneath it.
        wrapper = InstanceSessionWrapper({"cookies": {}}, server.send)
        return await frames_written(wrapper.send, server)

    messages = asyncio.run(run())

    assert [m["type"] for m in messages] == ["websocket.send", "websocket.send"]
    assert [orjson.loads(m["text"])["message"] for m in messages] == ["first", "second"]
    assert all(isinstance(m["text"], str) for m in messages)  # text frames, as JSON


def test_a_send_under_any_other_wrapper_is_kept():
    class OtherMiddleware:
        def __init__(self, inner):
            self.inner = inner

        async def send(self, message: dict) -> None:
            await self.inner(message)

    async def plain(message: dict) -> None: ...

    other = OtherMiddleware(plain)
    assert server_send(plain) is plain
    assert server_send(other.send) == other.send
    wrapper = InstanceSessionWrapper({"cookies": {}}, plain)
    assert server_send(wrapper.send) is plain
