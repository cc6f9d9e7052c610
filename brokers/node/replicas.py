"""The replicas a broker node holds: their logs on disk, kept in step with cluster metadata.

Each replica is a folder ``<tenant>.<topic>-<partition>`` under the node's data dir with a
``partition.metadata`` file naming the topic id, as Kafka's (KIP-516): a folder whose topic id
is not the current topic's is a deleted topic's leftovers, even if a new topic took the name.
Folders of replicas that metadata no longer places here are renamed ``*-delete`` and removed.
"""

import logging
import os
import shutil
import uuid
from pathlib import Path

from brokers.log.config import LogConfig
from brokers.log.partition import PartitionLog
from brokers.node.snapshot import MetadataSnapshot, PartitionMeta, TopicMeta

log = logging.getLogger(__name__)

PARTITION_METADATA = "partition.metadata"
DELETE_SUFFIX = "-delete"

ReplicaKey = tuple[str, str, int]  # tenant, topic, partition


def replica_dir_name(topic: TopicMeta, partition: int) -> str:
    return f"{topic.dir_prefix}-{partition}"


def _read_topic_id(directory: Path) -> uuid.UUID | None:
    try:
        for line in (directory / PARTITION_METADATA).read_text().splitlines():
            name, _, value = line.partition(":")
            if name.strip() == "topic_id":
                return uuid.UUID(value.strip())
    except (OSError, ValueError):
        return None
    return None


def _write_topic_id(directory: Path, topic_id: uuid.UUID) -> None:
    temp = directory / (PARTITION_METADATA + ".tmp")
    temp.write_text(f"version: 0\ntopic_id: {topic_id}\n")
    os.replace(temp, directory / PARTITION_METADATA)


class ReplicaManager:
    """Opens, reconfigures and drops this node's replica logs as metadata changes.

    Called from the node's event loop thread only (the logs' single writer).
    """

    def __init__(self, broker_id: int, data_dir: Path):
        self.broker_id = broker_id
        self.data_dir = Path(data_dir)
        self.data_dir.mkdir(parents=True, exist_ok=True)
        self.logs: dict[ReplicaKey, PartitionLog] = {}
        self._topic_ids: dict[ReplicaKey, uuid.UUID] = {}
        self._configs: dict[ReplicaKey, dict[str, str]] = {}

    def get(self, tenant: str, topic: str, partition: int) -> PartitionLog | None:
        return self.logs.get((tenant, topic, partition))

    def sync(self, snapshot: MetadataSnapshot) -> None:
        """Open the replicas metadata places here; close and delete the others."""
        wanted: dict[ReplicaKey, tuple[TopicMeta, PartitionMeta]] = {
            (t.tenant, t.name, p.index): (t, p) for t, p in snapshot.replicas_on(self.broker_id)
        }
        for key in list(self.logs):
            topic_meta = wanted.get(key, (None,))[0]
            if topic_meta is None or topic_meta.topic_id != self._topic_ids[key]:
                self._drop(key)
        for key, (topic_meta, partition_meta) in wanted.items():
            if key not in self.logs:
                self._open(topic_meta, partition_meta.index)
            elif self._configs[key] != topic_meta.configs:
                config = LogConfig.from_topic_configs(topic_meta.effective_configs)
                self.logs[key].update_config(config)
                self._configs[key] = topic_meta.configs
        self._remove_strays({replica_dir_name(t, p.index) for t, p in wanted.values()})

    def _open(self, topic: TopicMeta, partition: int) -> None:
        key = (topic.tenant, topic.name, partition)
        directory = self.data_dir / replica_dir_name(topic, partition)
        found = _read_topic_id(directory) if directory.exists() else None
        if directory.exists() and found != topic.topic_id:
            log.info("replica %s belongs to an older topic %s: deleting it", directory, found)
            self._delete_dir(directory)
        directory.mkdir(parents=True, exist_ok=True)
        _write_topic_id(directory, topic.topic_id)
        config = LogConfig.from_topic_configs(topic.effective_configs)
        self.logs[key] = PartitionLog(directory, config)
        self._topic_ids[key] = topic.topic_id
        self._configs[key] = topic.configs

    def _drop(self, key: ReplicaKey) -> None:
        replica = self.logs.pop(key)
        self._topic_ids.pop(key, None)
        self._configs.pop(key, None)
        replica.close()
        self._delete_dir(Path(replica.directory))

    def _remove_strays(self, keep: set[str]) -> None:
        for entry in self.data_dir.iterdir():
            if entry.is_dir() and entry.name not in keep and (entry / PARTITION_METADATA).exists():
                self._delete_dir(entry)
            elif entry.is_dir() and entry.name.endswith(DELETE_SUFFIX):
                shutil.rmtree(entry, ignore_errors=True)

    def _delete_dir(self, directory: Path) -> None:
        # Rename first (as Kafka's "-delete" folders): a crash mid-removal leaves no half replica
        # under a live name.
        doomed = directory.with_name(f"{directory.name}.{uuid.uuid4().hex}{DELETE_SUFFIX}")
        try:
            directory.rename(doomed)
        except FileNotFoundError:
            return
        shutil.rmtree(doomed, ignore_errors=True)

    def close(self) -> None:
        for replica in self.logs.values():
            replica.close()
        self.logs.clear()
