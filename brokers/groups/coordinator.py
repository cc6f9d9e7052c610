"""The group coordinator of one broker node: groups on the event loop, written through a store.

Implements brokers/protocol/group_services.GroupCoordinator. Each group's rules are the pure
state machine in group.py; this module adds what needs asyncio: requests that wait for the
barrier or the leader (futures by member id), one timer per group at its next deadline, loading
a group from the store when this broker becomes its coordinator (lazily, on its first request),
and writing every state change back (coalesced, in order, off the event loop).

Offsets: committed through the store (never cached here), deleted by OffsetDelete, and expired
by `expire_offsets` every offsets.retention.check.interval.ms once `start()` ran, for the groups
this broker coordinates (rules: offsets.py).

Everything here runs on the node's event loop thread; only the store's calls leave it.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Callable, Sequence

from brokers.protocol.errors import ErrorCode
from brokers.protocol.group_services import (
    COORDINATOR_KEY_GROUP,
    COORDINATOR_KEY_TRANSACTION,
    CommitRequest,
    CoordinatorResult,
    GroupDescription,
    GroupOverview,
    JoinRequest,
    JoinResult,
    LeaveResult,
    LeavingMember,
    OffsetDeleteResult,
    OffsetFetchResult,
    PartitionError,
    SyncRequest,
    SyncResult,
)
from brokers.protocol.services import BrokerEndpoint, Principal

from .group import Group, GroupState, random_member_id
from .offsets import expiry_condition, plan_offset_deletion
from .placement import coordinator_for
from .records import GroupRecord, GroupStore
from .settings import GroupSettings

log = logging.getLogger(__name__)

GroupKey = tuple[str, str]
"""(tenant, group id): group ids are a per-tenant namespace."""

# Never schedule a group's timer closer than this: the wall clock and the loop's clock differ
# slightly, and a timer firing just before its deadline would otherwise spin.
_MIN_TIMER_DELAY_S = 0.001


def wall_clock_ms() -> float:
    return time.time() * 1000


class GroupCoordinator:
    def __init__(
        self,
        node_id: int,
        *,
        brokers: Callable[[], Sequence[BrokerEndpoint]],
        tenant_of: Callable[[Principal | None], str],
        store: GroupStore,
        settings: GroupSettings | None = None,
        clock_ms: Callable[[], float] = wall_clock_ms,
        new_member_id: Callable[[str], str] = random_member_id,
    ) -> None:
        """brokers: the live brokers as this node sees them (MetadataView.brokers)."""
        self.node_id = node_id
        self.settings = settings or GroupSettings()
        self._brokers = brokers
        self._tenant_of = tenant_of
        self._store = store
        self._clock_ms = clock_ms
        self._new_member_id = new_member_id
        self._groups: dict[GroupKey, Group] = {}
        self._loads: dict[GroupKey, asyncio.Future[Group | None]] = {}
        self._join_waiters: dict[tuple[GroupKey, str], asyncio.Future[JoinResult]] = {}
        self._sync_waiters: dict[tuple[GroupKey, str], asyncio.Future[SyncResult]] = {}
        self._timers: dict[GroupKey, asyncio.TimerHandle] = {}
        self._unsaved: dict[GroupKey, GroupRecord] = {}
        self._savers: dict[GroupKey, asyncio.Task[None]] = {}
        self._expiry: asyncio.Task[None] | None = None

    # --- FindCoordinator ----------------------------------------------------------------

    async def find_coordinator(
        self, principal: Principal | None, key_type: int, key: str
    ) -> CoordinatorResult:
        if key_type == COORDINATOR_KEY_TRANSACTION:
            return CoordinatorResult(
                key,
                ErrorCode.coordinator_not_available,
                error_message="transactions are not supported by this cluster",
            )
        if key_type != COORDINATOR_KEY_GROUP:
            return CoordinatorResult(
                key, ErrorCode.invalid_request, error_message=f"unsupported key type {key_type}"
            )
        brokers = {endpoint.node_id: endpoint for endpoint in self._brokers()}
        chosen = coordinator_for(self._tenant_of(principal), key, brokers)
        if chosen is None:
            return CoordinatorResult(
                key, ErrorCode.coordinator_not_available, error_message="no live broker"
            )
        endpoint = brokers[chosen]
        return CoordinatorResult(
            key, ErrorCode.none, endpoint.node_id, endpoint.host, endpoint.port
        )

    # --- membership -----------------------------------------------------------------------

    async def join_group(self, principal: Principal | None, request: JoinRequest) -> JoinResult:
        tenant = self._tenant_of(principal)
        error = self._check_group(tenant, request.group_id)
        if error:
            return JoinResult(ErrorCode(error), member_id=request.member_id)
        key = (tenant, request.group_id)
        # Kafka creates a group only for a member without id; anyone else is a stranger to it.
        group = await self._get_group(key, create=request.member_id == "")
        if group is None:
            return JoinResult(ErrorCode.unknown_member_id, member_id=request.member_id)
        outcome = group.join(request, self._clock_ms())
        waiter: asyncio.Future[JoinResult] | None = None
        if outcome.result is None:
            waiter = self._new_waiter(
                self._join_waiters,
                (key, outcome.member_id),
                JoinResult(ErrorCode.rebalance_in_progress, member_id=outcome.member_id),
            )
        self._after_change(key, group)
        if outcome.result is not None:
            return outcome.result
        assert waiter is not None
        return await waiter

    async def sync_group(self, principal: Principal | None, request: SyncRequest) -> SyncResult:
        tenant = self._tenant_of(principal)
        error = self._check_group(tenant, request.group_id)
        if error:
            return SyncResult(ErrorCode(error))
        key = (tenant, request.group_id)
        group = await self._get_group(key, create=False)
        if group is None:
            return SyncResult(ErrorCode.unknown_member_id)
        result = group.sync(request, self._clock_ms())
        waiter: asyncio.Future[SyncResult] | None = None
        if result is None:
            waiter = self._new_waiter(
                self._sync_waiters,
                (key, request.member_id),
                SyncResult(ErrorCode.rebalance_in_progress),
            )
        self._after_change(key, group)
        if result is not None:
            return result
        assert waiter is not None
        return await waiter

    async def heartbeat(
        self,
        principal: Principal | None,
        group_id: str,
        generation_id: int,
        member_id: str,
        group_instance_id: str | None,
    ) -> int:
        tenant = self._tenant_of(principal)
        error = self._check_group(tenant, group_id)
        if error:
            return error
        key = (tenant, group_id)
        group = await self._get_group(key, create=False)
        if group is None:
            return ErrorCode.unknown_member_id
        error = group.heartbeat(generation_id, member_id, group_instance_id, self._clock_ms())
        self._after_change(key, group)
        return error

    async def leave_group(
        self, principal: Principal | None, group_id: str, members: Sequence[LeavingMember]
    ) -> LeaveResult:
        tenant = self._tenant_of(principal)
        error = self._check_group(tenant, group_id)
        if error:
            return LeaveResult(error)
        key = (tenant, group_id)
        group = await self._get_group(key, create=False)
        if group is None:
            return LeaveResult(
                ErrorCode.none,
                tuple((member, int(ErrorCode.unknown_member_id)) for member in members),
            )
        results = group.leave(members, self._clock_ms())
        self._after_change(key, group)
        return LeaveResult(ErrorCode.none, results)

    # --- offsets ------------------------------------------------------------------------

    async def commit_offsets(
        self, principal: Principal | None, request: CommitRequest
    ) -> tuple[PartitionError, ...]:
        tenant = self._tenant_of(principal)
        error = self._check_group(tenant, request.group_id)
        if not error:
            key = (tenant, request.group_id)
            group = await self._get_group(key, create=False)
            if group is not None:
                error = group.validate_commit(
                    request.generation_id,
                    request.member_id,
                    request.group_instance_id,
                    self._clock_ms(),
                )
                self._after_change(key, group)
            elif request.generation_id >= 0:
                error = ErrorCode.group_id_not_found
            # else: a simple commit creates the group (Empty), as Kafka does.
        if error:
            return tuple(PartitionError(o.topic, o.partition, error) for o in request.offsets)
        limit = self.settings.max_offset_metadata_bytes
        is_too_large = [len((o.metadata or "").encode()) > limit for o in request.offsets]
        to_store = [
            o for o, too_large in zip(request.offsets, is_too_large, strict=True) if not too_large
        ]
        stored = iter(
            await self._store.commit_offsets(tenant, request.group_id, to_store, self._clock_ms())
        )
        return tuple(
            PartitionError(
                o.topic,
                o.partition,
                ErrorCode.offset_metadata_too_large if too_large else next(stored),
            )
            for o, too_large in zip(request.offsets, is_too_large, strict=True)
        )

    async def fetch_offsets(
        self,
        principal: Principal | None,
        group_id: str,
        partitions: Sequence[tuple[str, int]] | None,
        *,
        require_stable: bool = False,
    ) -> OffsetFetchResult:
        # require_stable (KIP-447) waits out pending transactional commits; there are none.
        tenant = self._tenant_of(principal)
        error = self._check_group(tenant, group_id)
        if error:
            return OffsetFetchResult(error)
        offsets = await self._store.fetch_offsets(tenant, group_id, partitions)
        return OffsetFetchResult(ErrorCode.none, tuple(offsets))

    async def delete_offsets(
        self, principal: Principal | None, group_id: str, partitions: Sequence[tuple[str, int]]
    ) -> OffsetDeleteResult:
        tenant = self._tenant_of(principal)
        error = self._check_group(tenant, group_id)
        if error:
            return OffsetDeleteResult(error)
        key = (tenant, group_id)
        group = await self._get_group(key, create=False)
        if group is None:
            return OffsetDeleteResult(ErrorCode.group_id_not_found)
        plan = plan_offset_deletion(group, partitions)
        if plan.error_code:
            return OffsetDeleteResult(plan.error_code)
        if plan.deletable:
            remaining = await self._store.delete_offsets(tenant, group_id, plan.deletable)
            await self._remove_if_unused(key, group, remaining)
        subscribed = set(plan.subscribed)
        return OffsetDeleteResult(
            ErrorCode.none,
            tuple(
                PartitionError(
                    topic,
                    partition,
                    ErrorCode.group_subscribed_to_topic
                    if (topic, partition) in subscribed
                    else ErrorCode.none,
                )
                for topic, partition in partitions
            ),
        )

    async def expire_offsets(self) -> int:
        """Expire committed offsets past offsets.retention (KIP-211) in the groups this broker
        coordinates, and remove the Empty groups left without any; how many offsets expired."""
        # The store picks candidates by the states it has: let the pending writes land first
        # (those in flight now; a busy coordinator always has more, decided from memory anyway).
        await asyncio.gather(*self._savers.values(), return_exceptions=True)
        now_ms = self._clock_ms()
        retention_ms = self.settings.offsets_retention_ms
        expired = 0
        for key in await self._store.expiry_candidates(now_ms - retention_ms):
            if self._coordinator_of(*key) != self.node_id:
                continue
            try:
                expired += await self._expire_group_offsets(key, now_ms)
            except Exception:
                log.exception("could not expire offsets of group %s/%s", *key)
        if expired:
            log.info("expired %d committed offsets", expired)
        return expired

    async def _expire_group_offsets(self, key: GroupKey, now_ms: float) -> int:
        group = await self._get_group(key, create=False)
        if group is None:
            return 0
        commit_times = await self._store.offset_commit_times(*key)
        condition = expiry_condition(group)
        if condition is None:
            return 0
        retention_ms = self.settings.offsets_retention_ms
        expired = [
            (topic, partition)
            for (topic, partition), commit_ms in commit_times.items()
            if condition.is_expired(topic, commit_ms, now_ms, retention_ms)
        ]
        remaining = len(commit_times)
        if expired:
            # An offset committed while we were deciding is newer than every one we saw: it stays.
            remaining = await self._store.delete_offsets(
                *key, expired, committed_up_to_ms=max(commit_times[tp] for tp in expired)
            )
        await self._remove_if_unused(key, group, remaining)
        return len(expired)

    async def _remove_if_unused(self, key: GroupKey, group: Group, remaining: int) -> None:
        """An Empty group without committed offsets is removed (Dead), as Kafka's
        cleanupGroupMetadata does after OffsetDelete and offset expiry."""
        if remaining or not group.is_empty or self._groups.get(key) is not group:
            return
        await self._forget(key, group)
        # A commit that slipped in meanwhile keeps the group in the store; it loads from there.
        await self._store.delete_group_without_offsets(*key)

    # --- administration -----------------------------------------------------------------

    async def list_groups(
        self, principal: Principal | None, states: Sequence[str] = ()
    ) -> tuple[int, tuple[GroupOverview, ...]]:
        tenant = self._tenant_of(principal)
        overviews = {o.group_id: o for o in await self._store.list_groups(tenant)}
        for (owner, group_id), group in self._groups.items():
            if owner == tenant and not _is_unborn(group):
                overviews[group_id] = group.overview()
        wanted = {state.lower() for state in states}
        listed = tuple(
            overview
            for group_id, overview in sorted(overviews.items())
            if self._coordinator_of(tenant, group_id) == self.node_id
            and (not wanted or overview.state.lower() in wanted)
        )
        return ErrorCode.none, listed

    async def describe_group(self, principal: Principal | None, group_id: str) -> GroupDescription:
        tenant = self._tenant_of(principal)
        error = self._check_group(tenant, group_id)
        if error:
            return GroupDescription(group_id, error, state="")
        group = await self._get_group((tenant, group_id), create=False)
        if group is None:
            return GroupDescription(group_id, ErrorCode.none)
        return group.describe()

    async def delete_group(self, principal: Principal | None, group_id: str) -> int:
        tenant = self._tenant_of(principal)
        error = self._check_group(tenant, group_id)
        if error:
            return error
        key = (tenant, group_id)
        group = await self._get_group(key, create=False)
        if group is None or group.state is GroupState.DEAD:
            return ErrorCode.group_id_not_found
        if not group.is_empty:
            return ErrorCode.non_empty_group
        await self._forget(key, group)
        await self._store.delete_group(tenant, group_id)
        return ErrorCode.none

    # --- lifecycle ----------------------------------------------------------------------

    async def start(self) -> None:
        """Expire offsets every offsets.retention.check.interval.ms until `close()`."""
        if self._expiry is None:
            self._expiry = asyncio.get_running_loop().create_task(self._expire_periodically())

    async def _expire_periodically(self) -> None:
        interval_s = self.settings.offsets_retention_check_interval_ms / 1000
        while True:
            await asyncio.sleep(interval_s)
            try:
                await self.expire_offsets()
            except Exception:
                log.exception("offset expiry failed; retrying in %.0f s", interval_s)

    async def flush(self) -> None:
        """Wait until every state change so far is in the store."""
        while self._savers:
            await asyncio.gather(*self._savers.values(), return_exceptions=True)

    async def close(self) -> None:
        """Stop expiry and timers, answer waiting requests with NOT_COORDINATOR, flush."""
        if self._expiry is not None:
            self._expiry.cancel()
            await asyncio.gather(self._expiry, return_exceptions=True)
            self._expiry = None
        for key in list(self._groups):
            self._drop(key)
        await self.flush()

    # --- internals ----------------------------------------------------------------------

    def _coordinator_of(self, tenant: str, group_id: str) -> int | None:
        return coordinator_for(tenant, group_id, (b.node_id for b in self._brokers()))

    def _check_group(self, tenant: str, group_id: str) -> int:
        if not group_id:
            return ErrorCode.invalid_group_id
        coordinator = self._coordinator_of(tenant, group_id)
        if coordinator is None:
            return ErrorCode.coordinator_not_available
        if coordinator != self.node_id:
            # The choice moved to another broker: forget the group here (the new coordinator
            # loads it from the store), so clients look the coordinator up again.
            if (tenant, group_id) in self._groups:
                self._drop((tenant, group_id))
            return ErrorCode.not_coordinator
        return ErrorCode.none

    async def _get_group(self, key: GroupKey, *, create: bool) -> Group | None:
        group = self._groups.get(key)
        if group is None:
            load = self._loads.get(key)
            if load is None:
                load = asyncio.ensure_future(self._load(key))
                self._loads[key] = load
                load.add_done_callback(lambda _: self._loads.pop(key, None))
            group = await asyncio.shield(load)
            group = self._groups.get(key, group)
        if group is None and create:
            group = Group(key[1], self.settings, self._new_member_id)
            self._groups[key] = group
        return group

    async def _load(self, key: GroupKey) -> Group | None:
        record = await self._store.load_group(*key)
        if key in self._groups:
            return self._groups[key]
        if record is None:
            return None
        group = Group.from_record(record, self.settings, self._clock_ms(), self._new_member_id)
        self._groups[key] = group
        self._reschedule(key, group)
        return group

    def _new_waiter(
        self,
        waiters: dict[tuple[GroupKey, str], asyncio.Future],
        waiter_key: tuple[GroupKey, str],
        superseded: object,
    ) -> asyncio.Future:
        # The member sent the request again (its client gave up on the first one): the old
        # request is told to rejoin; its client is most likely gone anyway.
        _resolve(waiters.get(waiter_key), superseded)
        waiter = asyncio.get_running_loop().create_future()
        waiters[waiter_key] = waiter
        return waiter

    def _after_change(self, key: GroupKey, group: Group) -> None:
        """Answer whoever the change released, persist the group, re-arm its timer."""
        completions = group.take_completions()
        for member_id, join_result in completions.joins.items():
            _resolve(self._join_waiters.pop((key, member_id), None), join_result)
        for member_id, sync_result in completions.syncs.items():
            _resolve(self._sync_waiters.pop((key, member_id), None), sync_result)
        if _is_unborn(group):
            # A join refused before the group ever had a member: nothing to keep.
            self._drop(key)
            return
        self._save(key, group)
        self._reschedule(key, group)

    def _save(self, key: GroupKey, group: Group) -> None:
        self._unsaved[key] = group.record(key[0])
        if key not in self._savers:
            self._savers[key] = asyncio.get_running_loop().create_task(self._save_in_order(key))

    async def _save_in_order(self, key: GroupKey) -> None:
        try:
            while (record := self._unsaved.pop(key, None)) is not None:
                try:
                    await self._store.save_group(record)
                except Exception:
                    log.exception("could not save group %s/%s", *key)
        finally:
            self._savers.pop(key, None)

    def _reschedule(self, key: GroupKey, group: Group) -> None:
        timer = self._timers.pop(key, None)
        if timer is not None:
            timer.cancel()
        deadline_ms = group.next_deadline_ms()
        if deadline_ms is None:
            return
        delay_s = max((deadline_ms - self._clock_ms()) / 1000, _MIN_TIMER_DELAY_S)
        loop = asyncio.get_running_loop()
        self._timers[key] = loop.call_later(delay_s, self._on_timer, key)

    def _on_timer(self, key: GroupKey) -> None:
        self._timers.pop(key, None)
        group = self._groups.get(key)
        if group is None:
            return
        if self._coordinator_of(*key) != self.node_id:
            self._drop(key)
            return
        group.tick(self._clock_ms())
        self._after_change(key, group)

    async def _forget(self, key: GroupKey, group: Group) -> None:
        """Mark the group Dead and forget it here, once its pending writes are in the store
        (so that none of them re-creates it after the caller deleted it there)."""
        group.mark_dead(self._clock_ms())
        self._drop(key)
        self._unsaved.pop(key, None)
        saver = self._savers.get(key)
        if saver is not None:
            await asyncio.shield(saver)

    def _drop(self, key: GroupKey) -> None:
        """Forget a group here: its timer stops and its waiting requests get NOT_COORDINATOR."""
        self._groups.pop(key, None)
        timer = self._timers.pop(key, None)
        if timer is not None:
            timer.cancel()
        for waiter_key in [k for k in self._join_waiters if k[0] == key]:
            _resolve(
                self._join_waiters.pop(waiter_key),
                JoinResult(ErrorCode.not_coordinator, member_id=waiter_key[1]),
            )
        for waiter_key in [k for k in self._sync_waiters if k[0] == key]:
            _resolve(self._sync_waiters.pop(waiter_key), SyncResult(ErrorCode.not_coordinator))


def _is_unborn(group: Group) -> bool:
    return (
        group.state is GroupState.EMPTY
        and group.generation_id == 0
        and not group.members
        and not group.pending_members
    )


def _resolve(waiter: asyncio.Future | None, result: object) -> None:
    if waiter is not None and not waiter.done():
        waiter.set_result(result)
