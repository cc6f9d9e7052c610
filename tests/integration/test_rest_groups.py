"""REST members of consumer groups against real broker nodes and a real web process (uvicorn).

REST members are members of the Kafka group the broker nodes' coordinator runs: three of them
split a topic's partitions and read every record once; one leaving or going silent past its
session timeout hands its partitions to the others; committed offsets are where a new member
resumes; a REST member and a kafka-python consumer share one group; tenants stay apart.
"""

import time

import pytest

from tests.integration.cluster import running_cluster
from tests.integration.conftest import wait_for

pytestmark = pytest.mark.slow

PARTITIONS = 6


@pytest.fixture(scope="module")
def cluster(tmp_path_factory):
    with running_cluster(tmp_path_factory.mktemp("rest-groups"), broker_count=2) as cluster:
        cluster.start_web()
        cluster.token = cluster.manage("issue_api_key", "acme", "--create").strip()
        cluster.other_token = cluster.manage("issue_api_key", "globex", "--create").strip()
        yield cluster


@pytest.fixture(scope="module")
def rest(cluster):
    with cluster.rest_client(cluster.token) as client:
        yield client


@pytest.fixture(scope="module")
def clicks(rest):
    """A 6-partition topic with 3,000 records, 500 in each partition."""
    create_topic(rest, "clicks", PARTITIONS)
    records = [{"value": {"n": i}, "partition": i % PARTITIONS} for i in range(3000)]
    produced = rest.post("/topics/clicks/records", json={"records": records, "acks": "all"})
    assert produced.status_code == 200, produced.text
    assert not any("error" in r for r in produced.json()["records"])
    return "clicks"


def create_topic(rest, name: str, partitions: int) -> None:
    created = rest.post("/topics", json={"name": name, "partition_count": partitions})
    assert created.status_code == 201, created.text
    wait_for(
        lambda: all(p["leader"] for p in rest.get(f"/topics/{name}").json()["partitions"]),
        30, "leaders placed",
    )
    wait_for(lambda: rest.get(f"/topics/{name}/partitions").status_code == 200, 30, "offsets")


def join(rest, group: str, topics: list[str], **options) -> str:
    body = {"topics": topics, "auto_offset_reset": "earliest", **options}
    created = rest.post(f"/groups/{group}/members", json=body)
    assert created.status_code == 201, created.text
    return created.json()["member_id"]


def assignment(rest, group: str, member: str) -> set[int]:
    answer = rest.get(f"/groups/{group}/members/{member}/assignment")
    assert answer.status_code == 200, answer.text
    return {p for partitions in answer.json()["assignment"].values() for p in partitions}


def poll(rest, group: str, member: str, **params) -> list[dict]:
    answer = rest.get(f"/groups/{group}/members/{member}/records", params=params)
    assert answer.status_code == 200, answer.text
    return answer.json()["records"]


def wait_for_split(
    rest, group: str, members: list[str], timeout_s: float = 60, polling: bool = False
) -> list[set[int]]:
    """Wait until the members' assignments are non-empty, disjoint and cover every partition.

    ``polling``: poll each member meanwhile (a heartbeat, for members with short sessions).
    """

    def split() -> list[set[int]] | None:
        if polling:
            for member in members:
                poll(rest, group, member, timeout_ms=0, max_records=1)
        assigned = [assignment(rest, group, m) for m in members]
        union = set().union(*assigned)
        disjoint = sum(len(a) for a in assigned) == len(union)
        if all(assigned) and disjoint and union == set(range(PARTITIONS)):
            return assigned
        return None

    return wait_for(split, timeout_s, f"{len(members)} members splitting the partitions")


def test_three_rest_members_split_partitions_and_read_every_record_once(rest, clicks):
    members = [join(rest, "readers", [clicks]) for _ in range(3)]
    assigned = wait_for_split(rest, "readers", members)
    assert sorted(len(a) for a in assigned) == [2, 2, 2]
    group = rest.get("/groups/readers").json()
    assert group["state"] == "Stable" and len(group["members"]) == 3
    assert {m["client_id"] for m in group["members"]} == {"djafka-rest"}

    seen: dict[tuple[int, int], int] = {}
    deadline = time.monotonic() + 60
    while len(seen) < 3000 and time.monotonic() < deadline:
        for index, member in enumerate(members):
            for record in poll(rest, "readers", member, timeout_ms=200, max_records=700):
                key = (record["partition"], record["offset"])
                assert key not in seen, f"{key} read twice"
                assert record["topic"] == clicks
                assert record["partition"] in assigned[index]
                assert record["value"]["n"] % PARTITIONS == record["partition"]
                seen[key] = index
    assert len(seen) == 3000
    assert {n for n in range(3000)} == {
        p + PARTITIONS * o for (p, o) in seen
    }
    for member in members:
        assert rest.delete(f"/groups/readers/members/{member}").status_code == 204


def test_leaving_member_hands_its_partitions_to_the_others(rest, clicks):
    first, second = (join(rest, "handover", [clicks]) for _ in range(2))
    wait_for_split(rest, "handover", [first, second])
    assert rest.delete(f"/groups/handover/members/{first}").status_code == 204
    # The remaining member is not polled: the web tier serves its rebalance in between.
    wait_for_split(rest, "handover", [second], 30)
    assert rest.get(f"/groups/handover/members/{first}/assignment").status_code == 404
    assert rest.delete(f"/groups/handover/members/{first}").status_code == 404
    rest.delete(f"/groups/handover/members/{second}")


def test_member_not_polled_past_its_session_timeout_loses_its_partitions(rest, clicks):
    polled = join(rest, "silence", [clicks], session_timeout_ms=6000)
    silent = join(rest, "silence", [clicks], session_timeout_ms=6000)
    wait_for_split(rest, "silence", [polled, silent], polling=True)
    started = time.monotonic()

    def polled_has_all() -> bool:
        poll(rest, "silence", polled, timeout_ms=300, max_records=1)
        return assignment(rest, "silence", polled) == set(range(PARTITIONS))

    wait_for(polled_has_all, 40, "the polled member taking every partition")
    assert time.monotonic() - started > 3  # not before the silent member's session ran out
    gone = rest.get(f"/groups/silence/members/{silent}/records", params={"timeout_ms": 0})
    assert gone.status_code == 404
    group = rest.get("/groups/silence").json()
    assert len(group["members"]) == 1
    rest.delete(f"/groups/silence/members/{polled}")


def test_new_member_resumes_from_committed_offsets(rest):
    create_topic(rest, "ledger", 2)
    rest.post(
        "/topics/ledger/records",
        json={"records": [{"value": i, "partition": i % 2} for i in range(200)], "acks": "all"},
    )
    first = join(rest, "resume", ["ledger"])
    got = wait_for(lambda: poll(rest, "resume", first, timeout_ms=500, max_records=10), 30,
                   "first records")
    last = {}
    for record in got:
        last[record["partition"]] = record["offset"] + 1
    committed = rest.post(f"/groups/resume/members/{first}/offsets")
    assert committed.status_code == 200, committed.text
    assert {o["partition"]: o["offset"] for o in committed.json()["offsets"]} == last

    explicit = [{"topic": "ledger", "partition": 0, "offset": 50},
                {"topic": "ledger", "partition": 1, "offset": 70}]
    committed = rest.post(f"/groups/resume/members/{first}/offsets", json={"offsets": explicit})
    assert committed.status_code == 200, committed.text
    assert committed.json()["offsets"] == explicit
    offsets = {o["partition"]: o["committed_offset"] for o in rest.get("/groups/resume").json()[
        "offsets"]}
    assert offsets == {0: 50, 1: 70}
    assert rest.delete(f"/groups/resume/members/{first}").status_code == 204

    # "latest" would skip everything: reading from 50 and 70 proves the committed offsets.
    second = join(rest, "resume", ["ledger"], auto_offset_reset="latest")
    read: list[dict] = []
    deadline = time.monotonic() + 30
    while len(read) < 80 and time.monotonic() < deadline:
        read.extend(poll(rest, "resume", second, timeout_ms=500))
    by_partition = {p: [r["offset"] for r in read if r["partition"] == p] for p in (0, 1)}
    assert by_partition == {0: list(range(50, 100)), 1: list(range(70, 100))}
    rest.delete(f"/groups/resume/members/{second}")


def test_rest_member_and_kafka_python_consumer_share_a_group(cluster, rest, clicks):
    from kafka import KafkaConsumer

    username, password = cluster.token.split(".", 1)
    consumer = KafkaConsumer(
        clicks, group_id="mixed", bootstrap_servers=cluster.bootstrap,
        security_protocol="SASL_PLAINTEXT", sasl_mechanism="PLAIN",
        sasl_plain_username=username, sasl_plain_password=password,
        enable_auto_commit=False, auto_offset_reset="earliest",
    )
    try:
        member = join(rest, "mixed", [clicks])

        def shared() -> tuple[set[int], set[int]] | None:
            consumer.poll(timeout_ms=200, max_records=1)
            ours = assignment(rest, "mixed", member)
            theirs = {tp.partition for tp in consumer.assignment()}
            if ours and theirs and not ours & theirs and ours | theirs == set(range(PARTITIONS)):
                return ours, theirs
            return None

        ours, _ = wait_for(shared, 60, "a REST member and a Kafka client sharing the group")
        records = wait_for(lambda: poll(rest, "mixed", member, timeout_ms=500), 30, "records")
        assert {r["partition"] for r in records} <= ours
        group = rest.get("/groups/mixed").json()
        assert len(group["members"]) == 2
        rest.delete(f"/groups/mixed/members/{member}")
    finally:
        consumer.close()


def test_another_tenant_cannot_reach_a_member(cluster, rest, clicks):
    member = join(rest, "private", [clicks])
    base = f"/groups/private/members/{member}"
    with cluster.rest_client(cluster.other_token) as globex:
        assert globex.get(f"{base}/records", params={"timeout_ms": 0}).status_code == 404
        assert globex.post(f"{base}/offsets").status_code == 404
        assert globex.get(f"{base}/assignment").status_code == 404
        assert globex.delete(base).status_code == 404
        stranger = globex.post("/groups/private/members", json={"topics": [clicks]})
        assert stranger.status_code == 404
    assert rest.get(f"{base}/assignment").status_code == 200
    assert rest.delete(base).status_code == 204
