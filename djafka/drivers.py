"""The driver-location demo's city and drivers: a street grid of named districts, drivers on it.

Plain Python, no Django: ``drivers_demo`` (the producer) and ``/demo/drivers/`` (the page) both
take the city from here, so they agree on its size, its streets and its districts' names.

Coordinates are metres from the city's north-west corner: ``x`` grows eastward, ``y``
southward (as on a screen). Streets run every ``block_m`` metres both ways; a driver is always
on a street, moves from intersection to intersection and picks a way on at each one.
"""

import json
import random
from dataclasses import dataclass
from functools import cached_property
from typing import Any

DEFAULT_TOPIC = "driver-locations"
# The tenant ``bootstrap_demo`` creates (``./dev run``): where the demo runs unless told otherwise.
DEMO_TENANT = "demo"

AVAILABLE = "available"
ON_TRIP = "on_trip"
OFFLINE = "offline"
STATUSES = (AVAILABLE, ON_TRIP, OFFLINE)

# Directions as (dx, dy) with their compass heading in degrees (y grows southward).
NORTH, EAST, SOUTH, WEST = (0, -1), (1, 0), (0, 1), (-1, 0)
HEADING_DEG = {NORTH: 0, EAST: 90, SOUTH: 180, WEST: 270}

# Mean time in a status (seconds); leaving ``available``, a driver takes a trip or logs off.
MEAN_STATUS_S = {AVAILABLE: 45.0, ON_TRIP: 90.0, OFFLINE: 30.0}
LOG_OFF_SHARE = 0.25
# Cruising speeds (m/s): 25 to 50 km/h; on each block a driver goes a share of its own.
MIN_CRUISE_MPS, MAX_CRUISE_MPS = 7.0, 14.0
BLOCK_SPEED_SHARE = (0.75, 1.15)
MAX_SPEED_MPS = MAX_CRUISE_MPS * BLOCK_SPEED_SHARE[1]


@dataclass(frozen=True, slots=True)
class District:
    """A named rectangle of the city; it owns its west and north borders (half-open bounds)."""

    name: str
    column: int
    row: int
    x0: float
    y0: float
    x1: float
    y1: float


@dataclass(frozen=True)
class City:
    """Districts in rows (north to south) of names (west to east), each ``district_blocks``
    blocks wide and high, with streets every ``block_m`` metres."""

    names: tuple[tuple[str, ...], ...]
    block_m: float = 200.0
    district_blocks: int = 6

    def __post_init__(self) -> None:
        if not self.names or len({len(row) for row in self.names}) != 1 or not self.names[0]:
            raise ValueError("District names must form a non-empty rectangle.")

    @property
    def columns(self) -> int:
        return len(self.names[0])

    @property
    def rows(self) -> int:
        return len(self.names)

    @property
    def district_m(self) -> float:
        return self.block_m * self.district_blocks

    @property
    def width_m(self) -> float:
        return self.district_m * self.columns

    @property
    def height_m(self) -> float:
        return self.district_m * self.rows

    @property
    def streets_x(self) -> int:
        """Intersections along a west-east street (the number of north-south streets)."""
        return self.columns * self.district_blocks + 1

    @property
    def streets_y(self) -> int:
        """Intersections along a north-south street (the number of west-east streets)."""
        return self.rows * self.district_blocks + 1

    @cached_property
    def districts(self) -> list[District]:
        size = self.district_m
        return [
            District(name, column, row, column * size, row * size, (column + 1) * size,
                     (row + 1) * size)
            for row, names in enumerate(self.names)
            for column, name in enumerate(names)
        ]

    def contains(self, x: float, y: float) -> bool:
        return 0 <= x <= self.width_m and 0 <= y <= self.height_m

    def is_on_street(self, x: float, y: float) -> bool:
        """On a north-south street (x on the grid) or a west-east one (y on the grid)."""
        return self.contains(x, y) and (x % self.block_m == 0 or y % self.block_m == 0)

    def district_at(self, x: float, y: float) -> District:
        """The district holding a point: a border belongs to the district east or south of it,
        and the city's own east and south edges to the districts inside."""
        if not self.contains(x, y):
            raise ValueError(f"({x}, {y}) is outside the city.")
        column = min(int(x // self.district_m), self.columns - 1)
        row = min(int(y // self.district_m), self.rows - 1)
        return self.districts[row * self.columns + column]

    def layout(self) -> dict[str, Any]:
        """The city as the page draws it (JSON-ready)."""
        return {
            "width_m": self.width_m,
            "height_m": self.height_m,
            "block_m": self.block_m,
            "columns": self.columns,
            "rows": self.rows,
            "districts": [
                {"name": d.name, "column": d.column, "row": d.row, "x0": d.x0, "y0": d.y0,
                 "x1": d.x1, "y1": d.y1}
                for d in self.districts
            ],
        }


CITY = City(names=(
    ("Harbor", "Northgate", "Old Town", "Riverside"),
    ("West End", "Midtown", "Downtown", "Eastside"),
    ("Lakeside", "University", "Market", "Airport"),
))


@dataclass(frozen=True, slots=True)
class Position:
    """One location update of one driver: the record value the demo produces."""

    driver_id: str
    x_m: float
    y_m: float
    heading_deg: int
    speed_kmh: float
    status: str
    district: str
    ts_ms: int

    def as_value(self) -> dict[str, Any]:
        return {
            "driver_id": self.driver_id,
            "x_m": self.x_m,
            "y_m": self.y_m,
            "heading_deg": self.heading_deg,
            "speed_kmh": self.speed_kmh,
            "status": self.status,
            "district": self.district,
            "ts_ms": self.ts_ms,
        }

    def encode(self) -> bytes:
        return json.dumps(self.as_value(), separators=(",", ":")).encode()


@dataclass(slots=True)
class Driver:
    """A driver's state: where it is, which intersection it drives to, its status and clocks."""

    driver_id: str
    x: float
    y: float
    direction: tuple[int, int]
    target: tuple[int, int]  # the intersection (column, row of the street grid) driven to
    cruise_mps: float
    speed_mps: float
    status: str
    status_left_s: float
    due_s: float  # until its next location update
    has_reported: bool = False

    @property
    def is_online(self) -> bool:
        return self.status != OFFLINE


class Simulation:
    """``driver_count`` drivers on ``city``, each reporting every ``update_interval_s``.

    ``step`` advances time and answers the updates due: an online driver's every interval (the
    drivers spread over the interval, so updates flow evenly), and one update with status
    ``offline`` when a driver logs off; an offline driver is silent until it logs on again.
    The same ``seed`` gives the same drivers and moves.
    """

    def __init__(
        self,
        driver_count: int,
        update_interval_s: float = 1.0,
        seed: int | None = None,
        city: City = CITY,
        offline_share: float = 0.1,
    ):
        if driver_count <= 0:
            raise ValueError("A simulation needs at least one driver.")
        if update_interval_s <= 0:
            raise ValueError("The update interval must be positive.")
        self.city = city
        self.update_interval_s = update_interval_s
        self.offline_share = offline_share
        self.random = random.Random(seed)
        width = max(3, len(str(driver_count)))
        self.drivers = [
            self._new_driver(f"driver-{n:0{width}d}", n, driver_count)
            for n in range(1, driver_count + 1)
        ]

    def _new_driver(self, driver_id: str, n: int, count: int) -> Driver:
        rnd, city = self.random, self.city
        # Somewhere along a random street segment, driving to one of its ends.
        if rnd.random() < 0.5:
            column, row = rnd.randrange(city.streets_x - 1), rnd.randrange(city.streets_y)
            along = rnd.random()
            x, y = (column + along) * city.block_m, row * city.block_m
            direction = rnd.choice((EAST, WEST))
            target = (column + 1, row) if direction == EAST else (column, row)
        else:
            column, row = rnd.randrange(city.streets_x), rnd.randrange(city.streets_y - 1)
            along = rnd.random()
            x, y = column * city.block_m, (row + along) * city.block_m
            direction = rnd.choice((SOUTH, NORTH))
            target = (column, row + 1) if direction == SOUTH else (column, row)
        status = OFFLINE if rnd.random() < self.offline_share else rnd.choice((AVAILABLE, ON_TRIP))
        cruise = rnd.uniform(MIN_CRUISE_MPS, MAX_CRUISE_MPS)
        return Driver(
            driver_id=driver_id, x=x, y=y, direction=direction, target=target,
            cruise_mps=cruise, speed_mps=cruise, status=status,
            status_left_s=rnd.expovariate(1 / MEAN_STATUS_S[status]),
            # Driver n reports at its own phase of the interval.
            due_s=self.update_interval_s * (n - 1) / count,
        )

    def step(self, dt_s: float, now_ms: int) -> list[Position]:
        """Advance every driver by ``dt_s`` seconds; the updates due, stamped ``now_ms``."""
        if dt_s < 0:
            raise ValueError("Time does not run backwards.")
        updates = []
        for driver in self.drivers:
            was_online = driver.is_online
            self._advance(driver, dt_s)
            if not driver.is_online:
                # One update says it logged off (or, at start, that it is off); then silence.
                if was_online or not driver.has_reported:
                    updates.append(self._report(driver, now_ms))
                continue
            if not was_online:
                driver.due_s = 0.0  # logged on: report at once
            else:
                driver.due_s -= dt_s
            if driver.due_s <= 0:
                updates.append(self._report(driver, now_ms))
                driver.due_s += self.update_interval_s
                if driver.due_s <= 0:  # fell behind by more than an interval: skip, not burst
                    driver.due_s = self.update_interval_s
        return updates

    def _report(self, driver: Driver, now_ms: int) -> Position:
        driver.has_reported = True
        # The district of the rounded point, so that a reader of the value finds the same one.
        x_m, y_m = round(driver.x, 1), round(driver.y, 1)
        return Position(
            driver_id=driver.driver_id,
            x_m=x_m,
            y_m=y_m,
            heading_deg=HEADING_DEG[driver.direction],
            speed_kmh=round(driver.speed_mps * 3.6, 1) if driver.is_online else 0.0,
            status=driver.status,
            district=self.city.district_at(x_m, y_m).name,
            ts_ms=now_ms,
        )

    def _advance(self, driver: Driver, dt_s: float) -> None:
        left = dt_s
        while left > 0:
            chunk = min(left, driver.status_left_s)
            if driver.is_online:
                self._drive(driver, chunk * driver.speed_mps)
            driver.status_left_s -= chunk
            left -= chunk
            if driver.status_left_s <= 0:
                self._change_status(driver)

    def _change_status(self, driver: Driver) -> None:
        rnd = self.random
        if driver.status == AVAILABLE:
            driver.status = OFFLINE if rnd.random() < LOG_OFF_SHARE else ON_TRIP
        else:
            driver.status = AVAILABLE
        driver.status_left_s = rnd.expovariate(1 / MEAN_STATUS_S[driver.status])

    def _drive(self, driver: Driver, distance_m: float) -> None:
        """Move ``distance_m`` along the streets, turning at the intersections reached."""
        block = self.city.block_m
        while distance_m > 0:
            tx, ty = driver.target[0] * block, driver.target[1] * block
            to_target = abs(tx - driver.x) + abs(ty - driver.y)
            if distance_m < to_target:
                dx, dy = driver.direction
                driver.x += dx * distance_m
                driver.y += dy * distance_m
                return
            # At the intersection exactly (no drift off the street), then on to the next one.
            driver.x, driver.y = tx, ty
            distance_m -= to_target
            self._turn(driver)

    def _turn(self, driver: Driver) -> None:
        """Pick the way on at an intersection: mostly straight, sometimes left or right, back
        only at a dead end (the city's edge)."""
        rnd, city = self.random, self.city
        column, row = driver.target
        dx, dy = driver.direction
        ways = {(dx, dy): 6.0, (dy, -dx): 2.0, (-dy, dx): 2.0}  # straight, left, right
        possible = {
            way: weight for way, weight in ways.items()
            if 0 <= column + way[0] < city.streets_x and 0 <= row + way[1] < city.streets_y
        }
        if not possible:
            possible = {(-dx, -dy): 1.0}
        way = rnd.choices(list(possible), weights=list(possible.values()))[0]
        driver.direction = way
        driver.target = (column + way[0], row + way[1])
        driver.speed_mps = driver.cruise_mps * rnd.uniform(*BLOCK_SPEED_SHARE)

    def online_count(self) -> int:
        return sum(1 for driver in self.drivers if driver.is_online)

