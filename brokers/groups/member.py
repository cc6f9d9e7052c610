"""A member of a classic group: its protocols, timeouts, assignment, place in a rebalance."""

from __future__ import annotations

from dataclasses import dataclass

from brokers.protocol.group_services import JoinRequest

from .records import MemberRecord


@dataclass(slots=True)
class Member:
    member_id: str
    group_instance_id: str | None
    client_id: str
    client_host: str
    protocol_type: str
    protocols: tuple[tuple[str, bytes], ...]
    """(assignor name, metadata) in the member's order of preference."""
    session_timeout_ms: int
    rebalance_timeout_ms: int
    last_heartbeat_ms: float
    assignment: bytes = b""
    is_awaiting_join: bool = False
    """It sent JoinGroup in this rebalance and waits for the barrier."""
    is_awaiting_sync: bool = False
    """It sent SyncGroup and waits for the leader's assignments."""

    @classmethod
    def from_join(cls, member_id: str, request: JoinRequest, now_ms: float) -> Member:
        return cls(
            member_id=member_id,
            group_instance_id=request.group_instance_id,
            client_id=request.client_id,
            client_host=request.client_host,
            protocol_type=request.protocol_type,
            protocols=request.protocols,
            session_timeout_ms=request.session_timeout_ms,
            rebalance_timeout_ms=request.rebalance_timeout_ms,
            last_heartbeat_ms=now_ms,
        )

    @classmethod
    def from_record(cls, record: MemberRecord, protocol_type: str, now_ms: float) -> Member:
        # A member loaded after a coordinator move gets a whole session timeout to heartbeat,
        # as Kafka gives members it reloads from __consumer_offsets.
        return cls(
            member_id=record.member_id,
            group_instance_id=record.group_instance_id,
            client_id=record.client_id,
            client_host=record.client_host,
            protocol_type=protocol_type,
            protocols=record.protocols,
            session_timeout_ms=record.session_timeout_ms,
            rebalance_timeout_ms=record.rebalance_timeout_ms,
            last_heartbeat_ms=max(record.last_heartbeat_ms, now_ms),
            assignment=record.assignment,
        )

    def record(self) -> MemberRecord:
        return MemberRecord(
            member_id=self.member_id,
            group_instance_id=self.group_instance_id,
            client_id=self.client_id,
            client_host=self.client_host,
            session_timeout_ms=self.session_timeout_ms,
            rebalance_timeout_ms=self.rebalance_timeout_ms,
            protocols=self.protocols,
            assignment=self.assignment,
            last_heartbeat_ms=self.last_heartbeat_ms,
        )

    @property
    def protocol_names(self) -> list[str]:
        return [name for name, _ in self.protocols]

    def metadata_for(self, protocol_name: str) -> bytes:
        for name, metadata in self.protocols:
            if name == protocol_name:
                return metadata
        return b""

    def update_from_join(self, request: JoinRequest) -> None:
        self.protocols = request.protocols
        self.session_timeout_ms = request.session_timeout_ms
        self.rebalance_timeout_ms = request.rebalance_timeout_ms
        self.client_id = request.client_id
        self.client_host = request.client_host

    def has_same_protocols(self, protocols: tuple[tuple[str, bytes], ...]) -> bool:
        return self.protocols == protocols

    def is_alive_at(self, now_ms: float) -> bool:
        """Within its session timeout. A member waiting on the barrier or on the leader is
        kept: the rebalance (and pending-sync) timeouts bound those waits instead."""
        if self.is_awaiting_join or self.is_awaiting_sync:
            return True
        return now_ms < self.session_deadline_ms

    @property
    def session_deadline_ms(self) -> float:
        return self.last_heartbeat_ms + self.session_timeout_ms


def vote_for_protocol(members: list[Member]) -> str | None:
    """Kafka's selection: among protocols every member supports, each member votes for the first
    of them in its own preference order; most votes wins (ties: the first member's preference).
    """
    if not members:
        return None
    candidates = set(members[0].protocol_names)
    for member in members[1:]:
        candidates &= set(member.protocol_names)
    if not candidates:
        return None
    votes: dict[str, int] = {}
    for member in members:
        choice = next(name for name in member.protocol_names if name in candidates)
        votes[choice] = votes.get(choice, 0) + 1
    preference = [name for name in members[0].protocol_names if name in candidates]
    return max(preference, key=lambda name: (votes.get(name, 0), -preference.index(name)))
