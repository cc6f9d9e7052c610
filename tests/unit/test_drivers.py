"""The drivers demo's city and simulation (djafka/drivers.py), and its page's access rules."""

import json

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from djafka.drivers import (
    AVAILABLE,
    CITY,
    HEADING_DEG,
    MAX_SPEED_MPS,
    OFFLINE,
    ON_TRIP,
    STATUSES,
    City,
    Simulation,
)

TICK_S = 0.05


def run(simulation: Simulation, seconds: float, start_ms: int = 0) -> list:
    """Every update of ``seconds`` of simulated time in ticks of TICK_S."""
    updates = []
    for tick in range(round(seconds / TICK_S)):
        updates.extend(simulation.step(TICK_S, start_ms + round(tick * TICK_S * 1000)))
    return updates


# --- The city --------------------------------------------------------------------------------


def test_the_city_is_a_grid_of_twelve_named_districts_that_tile_it():
    assert (CITY.columns, CITY.rows) == (4, 3)
    names = [d.name for d in CITY.districts]
    assert len(set(names)) == 12
    assert sum((d.x1 - d.x0) * (d.y1 - d.y0) for d in CITY.districts) == (
        CITY.width_m * CITY.height_m
    )
    # Borders are avenues: every district edge lies on a street.
    for d in CITY.districts:
        assert d.x0 % CITY.block_m == d.y0 % CITY.block_m == 0


@pytest.mark.parametrize(
    ("x", "y", "name"),
    [
        (0, 0, "Harbor"),                   # the north-west corner
        (1199.9, 0, "Harbor"),
        (1200, 0, "Northgate"),             # a border belongs to the district east of it
        (1200, 1200, "Midtown"),            # ... and south of it
        (1199.9, 1199.9, "Harbor"),
        (2400, 1200, "Downtown"),
        (4800, 0, "Riverside"),             # the city's east edge is inside its last column
        (4800, 3600, "Airport"),            # the south-east corner
        (0, 3600, "Lakeside"),
        (3599.9, 2400, "Market"),
    ],
)
def test_district_assignment_at_borders_and_edges(x, y, name):
    assert CITY.district_at(x, y).name == name


@pytest.mark.parametrize(("x", "y"), [(-0.1, 0), (0, -0.1), (4800.1, 10), (10, 3600.1)])
def test_points_outside_the_city_have_no_district(x, y):
    with pytest.raises(ValueError, match="outside the city"):
        CITY.district_at(x, y)


def test_the_layout_handed_to_the_page_matches_the_city():
    layout = json.loads(json.dumps(CITY.layout()))
    assert layout["width_m"] == CITY.width_m == 4800
    assert layout["height_m"] == CITY.height_m == 3600
    assert layout["block_m"] == 200
    assert [d["name"] for d in layout["districts"]] == [d.name for d in CITY.districts]
    for d in layout["districts"]:
        assert CITY.district_at(d["x0"], d["y0"]).name == d["name"]


def test_a_city_needs_a_rectangle_of_names():
    with pytest.raises(ValueError, match="rectangle"):
        City(names=(("A", "B"), ("C",)))


# --- Drivers ---------------------------------------------------------------------------------


def test_drivers_stay_on_streets_inside_the_city_and_head_where_they_move():
    simulation = Simulation(60, seed=3)
    block = CITY.block_m
    before = {d.driver_id: (d.x, d.y) for d in simulation.drivers}
    moves_checked = 0
    for _ in range(round(300 / TICK_S)):  # five minutes
        simulation.step(TICK_S, 0)
        for driver in simulation.drivers:
            assert CITY.is_on_street(driver.x, driver.y), driver
            x0, y0 = before[driver.driver_id]
            x, y = driver.x, driver.y
            dx, dy = driver.direction
            # Between intersections a driver moves along its street, the way it heads.
            if y == y0 and x != x0 and x % block and x0 % block:  # on a west-east street
                assert dy == 0 and (x - x0) * dx > 0, driver
                moves_checked += 1
            if x == x0 and y != y0 and y % block and y0 % block:  # on a north-south street
                assert dx == 0 and (y - y0) * dy > 0, driver
                moves_checked += 1
            before[driver.driver_id] = (x, y)
    assert moves_checked > 100_000
    # They spread over the city rather than bunching up at an edge.
    assert len({CITY.district_at(d.x, d.y).name for d in simulation.drivers}) >= 9


@settings(max_examples=25, deadline=None)
@given(seed=st.integers(0, 2**32), drivers=st.integers(1, 30),
       tick_s=st.floats(0.01, 3.0), ticks=st.integers(1, 80))
def test_every_update_is_a_valid_position_on_a_street(seed, drivers, tick_s, ticks):
    simulation = Simulation(drivers, seed=seed)
    for tick in range(ticks):
        for update in simulation.step(tick_s, tick):
            assert CITY.is_on_street(update.x_m, update.y_m), update
            assert update.district == CITY.district_at(update.x_m, update.y_m).name
            assert update.heading_deg in HEADING_DEG.values()
            assert update.status in STATUSES
            assert (update.speed_kmh == 0) == (update.status == OFFLINE)
            assert update.speed_kmh <= MAX_SPEED_MPS * 3.6 + 0.1
            assert update.ts_ms == tick


def test_drivers_move_at_their_speed_along_the_streets():
    simulation = Simulation(30, seed=11, offline_share=0)
    start = {d.driver_id: (d.x, d.y) for d in simulation.drivers}
    simulation.step(1.0, 0)
    for driver in simulation.drivers:
        if driver.status == OFFLINE:
            continue
        x0, y0 = start[driver.driver_id]
        travelled = abs(driver.x - x0) + abs(driver.y - y0)  # blocks: the Manhattan metric
        assert 0 < travelled <= MAX_SPEED_MPS + 1e-9


def test_each_online_driver_reports_at_the_rate_spread_over_the_interval():
    simulation = Simulation(100, update_interval_s=0.5, seed=5, offline_share=0)
    first_tick = simulation.step(TICK_S, 0)
    assert 0 < len(first_tick) < 100 // 2  # not all at once: each at its own phase
    updates = first_tick + run(simulation, 10 - TICK_S, start_ms=50)
    per_driver: dict[str, int] = {}
    for update in updates:
        per_driver[update.driver_id] = per_driver.get(update.driver_id, 0) + 1
    assert len(per_driver) == 100
    # 10 s at 2 updates/s: 20 each, bar the few that went offline on the way.
    assert sum(1 for n in per_driver.values() if n >= 19) > 80
    assert max(per_driver.values()) == 20


def test_driver_ids_are_zero_padded_and_unique():
    assert [d.driver_id for d in Simulation(3, seed=1).drivers] == [
        "driver-001", "driver-002", "driver-003",
    ]
    ids = [d.driver_id for d in Simulation(1500, seed=1).drivers]
    assert ids[0] == "driver-0001" and ids[-1] == "driver-1500" and len(set(ids)) == 1500


def test_drivers_go_offline_say_so_once_stay_put_and_come_back_online():
    simulation = Simulation(40, seed=2)
    went_offline, came_back = set(), set()
    last_status = {}
    for tick in range(round(600 / TICK_S)):  # ten minutes
        before = {d.driver_id: (d.status, d.x, d.y) for d in simulation.drivers}
        updates = simulation.step(TICK_S, tick)
        reported = {u.driver_id: u for u in updates}
        assert len(reported) == len(updates)  # at most one update per driver per tick
        for driver in simulation.drivers:
            status, x, y = before[driver.driver_id]
            if status == OFFLINE and driver.status == OFFLINE:
                assert (driver.x, driver.y) == (x, y)  # an offline driver does not move
                assert driver.driver_id not in reported or tick == 0  # and is silent
            if status != OFFLINE and driver.status == OFFLINE:
                went_offline.add(driver.driver_id)
                assert reported[driver.driver_id].status == OFFLINE  # it says so at once
            if status == OFFLINE and driver.status != OFFLINE:
                came_back.add(driver.driver_id)
                assert reported[driver.driver_id].status == driver.status  # reports at once
        for update in updates:
            last_status[update.driver_id] = update.status
    assert len(went_offline) >= 5
    assert len(came_back) >= 5
    assert {AVAILABLE, ON_TRIP, OFFLINE} <= set(last_status.values()) | {
        d.status for d in simulation.drivers
    }


def test_drivers_offline_at_the_start_report_it_once():
    simulation = Simulation(200, seed=9, offline_share=0.5)
    offline = {d.driver_id for d in simulation.drivers if d.status == OFFLINE}
    assert 60 < len(offline) < 140
    first = {u.driver_id: u for u in simulation.step(0, 0)}
    assert offline <= set(first)
    assert all(first[i].status == OFFLINE and first[i].speed_kmh == 0 for i in offline)
    second = {u.driver_id for u in simulation.step(TICK_S, 50)}
    assert not (offline & second) - {d.driver_id for d in simulation.drivers if d.is_online}


def test_the_same_seed_gives_the_same_city_life_and_another_seed_another():
    def trace(seed: int) -> list[bytes]:
        return [u.encode() for u in run(Simulation(25, seed=seed), 60)]

    assert trace(42) == trace(42)
    assert trace(42) != trace(43)


def test_a_position_encodes_as_the_record_value():
    update = Simulation(1, seed=1).step(0, 1_700_000_000_000)[0]
    value = json.loads(update.encode())
    assert value == {
        "driver_id": "driver-001", "x_m": update.x_m, "y_m": update.y_m,
        "heading_deg": update.heading_deg, "speed_kmh": update.speed_kmh,
        "status": update.status, "district": update.district, "ts_ms": 1_700_000_000_000,
    }


@pytest.mark.parametrize(("drivers", "interval_s"), [(0, 1.0), (-1, 1.0), (5, 0.0), (5, -1.0)])
def test_a_simulation_needs_drivers_and_a_positive_interval(drivers, interval_s):
    with pytest.raises(ValueError):
        Simulation(drivers, update_interval_s=interval_s)


def test_a_large_step_skips_updates_rather_than_bursting_them():
    simulation = Simulation(10, seed=4, offline_share=0)
    simulation.step(0, 0)
    updates = simulation.step(7.5, 7500)  # a stall: at most one update each
    assert len(updates) == len({u.driver_id for u in updates}) <= 10
    assert all(0 < d.due_s <= 1.0 for d in simulation.drivers if d.is_online)


# --- The page --------------------------------------------------------------------------------


@pytest.mark.django_db
def test_the_page_asks_anonymous_visitors_to_log_in(client):
    response = client.get("/demo/drivers/")
    assert response.status_code == 302
    assert response["Location"].startswith("/admin/login/?next=/demo/drivers/")


@pytest.mark.django_db
def test_operators_get_the_page_with_the_city_and_the_demo_tenant_first(admin_client):
    from djafka.models import Tenant

    Tenant.objects.create(name="acme")
    Tenant.objects.create(name="demo")
    response = admin_client.get("/demo/drivers/")
    assert response.status_code == 200
    config = response.context["page_config"]
    assert config == {
        "city": CITY.layout(), "topic": "driver-locations", "tenant": "demo",
        "is_operator": True,
    }
    html = response.content.decode()
    assert 'id="drivers-config"' in html and "demo/drivers.js" in html
    assert '<a href="/demo/drivers/">Drivers demo</a>' in html
    # Not created yet: the page says how to start the producer.
    assert "does not exist yet" in html and "manage.py drivers_demo" in html
    other = admin_client.get("/demo/drivers/?tenant=acme&topic=rides")
    assert other.context["page_config"]["tenant"] == "acme"
    assert other.context["page_config"]["topic"] == "rides"
    assert "drivers_demo --tenant acme --topic rides" in other.content.decode()


@pytest.mark.django_db
def test_a_tenant_admin_sees_only_their_tenant_and_others_are_refused(client):
    from django.contrib.auth.models import User

    from djafka.models import Tenant, TenantMembership

    acme = Tenant.objects.create(name="acme")
    Tenant.objects.create(name="demo")
    admin = User.objects.create_user("acme-admin", password="pw-123456789", is_staff=True)
    TenantMembership.objects.create(user=admin, tenant=acme)
    client.force_login(admin)
    response = client.get("/demo/drivers/?tenant=demo")
    assert response.status_code == 200
    assert response.context["page_config"]["tenant"] == "acme"
    assert response.context["page_config"]["is_operator"] is False

    client.force_login(User.objects.create_user("nobody", password="pw-123456789"))
    assert client.get("/demo/drivers/").status_code == 403


@pytest.mark.django_db
def test_an_operator_asking_for_an_unknown_tenant_gets_the_demo_tenant(admin_client):
    from djafka.models import Tenant

    Tenant.objects.create(name="acme")
    Tenant.objects.create(name="demo")
    response = admin_client.get("/demo/drivers/?tenant=gone")
    assert response.context["page_config"]["tenant"] == "demo"
    assert [t.name for t in response.context["tenants"]] == ["acme", "demo"]


@pytest.mark.django_db
@pytest.mark.parametrize(
    "topic",
    ["x; curl x|sh", "$(reboot)", "`id`", "a b", "rides'; rm -rf ~; '", ".", "t" * 250, "ü"],
)
def test_an_illegal_topic_name_is_never_offered_as_a_shell_command(admin_client, topic):
    import re
    from urllib.parse import quote

    from djafka.models import Tenant

    Tenant.objects.create(name="demo")
    response = admin_client.get("/demo/drivers/?topic=" + quote(topic))
    assert response.status_code == 200
    html = response.content.decode()
    # No command to paste at all, and the page does not subscribe to the name.
    assert "drivers_demo" not in html
    assert all(topic not in code for code in re.findall(r"<code>(.*?)</code>", html, re.S))
    assert response.context["page_config"]["topic"] is None
    assert "cannot be watched" in html and "Topic name" in html


def test_the_producer_command_quotes_what_it_is_given():
    from djafka.demo_views import producer_command
    from djafka.models import Tenant

    assert producer_command(Tenant(name="demo"), "driver-locations") == (
        ".venv/bin/python manage.py drivers_demo"
    )
    assert producer_command(Tenant(name="acme"), "rides.v2") == (
        ".venv/bin/python manage.py drivers_demo --tenant acme --topic rides.v2"
    )
    # Names are validated before they get here; quoting is the second line of defence.
    assert producer_command(Tenant(name="a;b"), "x y").endswith("--tenant 'a;b' --topic 'x y'")


# --- The producer command ----------------------------------------------------------------------


class FullQueueProducer:
    """A producer whose local queue stays full, as when the broker nodes are down."""

    def __init__(self, stop, polls_until_ctrl_c: int):
        self.stop, self.polls_until_ctrl_c, self.polls = stop, polls_until_ctrl_c, 0

    def produce(self, *args, **kwargs):
        raise BufferError("Local: Queue full")

    def poll(self, timeout: float) -> int:
        self.polls += 1
        assert self.polls < 100, "_produce kept waiting for room after the stop flag was set"
        if self.polls == self.polls_until_ctrl_c:
            self.stop.set()
        return 0


def test_ctrl_c_while_the_queue_is_full_stops_producing_instead_of_waiting_for_brokers():
    import threading

    from djafka.management.commands.drivers_demo import Command, Deliveries

    stop = threading.Event()
    producer = FullQueueProducer(stop, polls_until_ctrl_c=3)
    queued = Command()._produce(producer, "t", b"k", b"v", 0, Deliveries(), stop)
    assert queued is False
    assert producer.polls == 3
