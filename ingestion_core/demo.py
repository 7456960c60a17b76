"""The demo data the ``demo_*`` sources read: a small shop database and a few files.

``ingest demo`` (and ``make run``) calls :func:`generate_demo`, which writes into ``out``
(default ``demo/data``)::

    shop.sqlite                   customers, products, orders, order_items (related by keys)
    files/stores.csv              the shops, one per line, with a header
    files/events/2024-01-0N.jsonl web events, one file per day, with nested objects
    files/prices.parquet          price list per product and date

Everything is generated from fixed seeds, so two runs produce the same rows, and without
``force`` files that are already there are left alone (a second ``make run`` is instant).
Each file is written to a temp file beside it and renamed, so a reader never sees half a file.
Only the standard library and pyarrow are used.
"""

from __future__ import annotations

import csv
import io
import json
import os
import random
import sqlite3
import tempfile
import unicodedata
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from datetime import UTC, date, datetime, timedelta
from decimal import Decimal
from pathlib import Path

SEED = 20240101
SQLITE_NAME = "shop.sqlite"
EVENT_DAYS = (date(2024, 1, 1), date(2024, 1, 2), date(2024, 1, 3))

# sizes: a few thousand rows in all, generated in well under a second
CUSTOMERS = 300
PRODUCTS = 120
ORDERS = 1500
STORES = 40
EVENTS_PER_DAY = 400
PRICE_DATES = (date(2023, 10, 1), date(2024, 1, 1), date(2024, 3, 1))

SHOP_START = datetime(2023, 1, 1)
SHOP_END = datetime(2024, 3, 31, 23, 59, 59)

FIRST_NAMES = ("Anna", "Ben", "Clara", "David", "Emma", "Felix", "Greta", "Hugo", "Ines", "Jonas",
               "Lea", "Max", "Nora", "Oskar", "Paula", "Sofia", "Tim", "Yara", "Lucas", "Mila")
LAST_NAMES = ("Müller", "Schmidt", "Dubois", "Martin", "de Vries", "Jansen", "Rossi", "García",
              "Novak", "Weber", "Fischer", "Bernard", "Bakker", "Ricci", "López", "Gruber")
CITIES = {
    "DE": ("Berlin", "Hamburg", "München", "Köln"),
    "FR": ("Paris", "Lyon", "Marseille"),
    "NL": ("Amsterdam", "Rotterdam", "Utrecht"),
    "AT": ("Wien", "Graz"),
    "IT": ("Milano", "Roma"),
    "ES": ("Madrid", "Barcelona"),
}
COUNTRIES = tuple(CITIES)
CATEGORIES = {
    "coffee": ("Espresso beans", "Filter coffee", "Decaf beans", "Cold brew"),
    "tea": ("Green tea", "Earl Grey", "Chai", "Rooibos"),
    "equipment": ("Grinder", "French press", "Kettle", "Milk frother"),
    "accessories": ("Mug", "Travel cup", "Filters", "Scale"),
}
ORDER_STATUSES = ("placed", "paid", "shipped", "delivered", "delivered", "delivered", "cancelled", "returned")
EVENT_TYPES = ("page_view", "page_view", "page_view", "search", "add_to_cart", "checkout", "purchase")
DEVICES = (("mobile", "iOS"), ("mobile", "Android"), ("desktop", "Windows"), ("desktop", "macOS"),
           ("tablet", "iPadOS"))


# --- public ---------------------------------------------------------------------------------

def demo_paths(out: Path) -> list[Path]:
    """Every file :func:`generate_demo` writes, in the order it writes them."""
    files = out / "files"
    return [
        out / SQLITE_NAME,
        files / "stores.csv",
        *(files / "events" / f"{day.isoformat()}.jsonl" for day in EVENT_DAYS),
        files / "prices.parquet",
    ]


def generate_demo(out: Path, force: bool = False) -> list[Path]:
    """Write the demo database and files into ``out``; returns their paths.

    Without ``force``, files that exist already are kept as they are (nothing is written when
    all exist). With ``force`` every file is generated again (with the same content).
    """
    out = Path(out)
    writers: dict[Path, Callable[[Path], None]] = {out / SQLITE_NAME: _write_shop}
    files = out / "files"
    writers[files / "stores.csv"] = lambda p: _write_text(p, _stores_csv())
    for index, day in enumerate(EVENT_DAYS):
        writers[files / "events" / f"{day.isoformat()}.jsonl"] = (
            lambda p, d=day, i=index: _write_text(p, _events_jsonl(d, i))
        )
    writers[files / "prices.parquet"] = _write_prices
    for path in demo_paths(out):
        if force or not path.exists():
            path.parent.mkdir(parents=True, exist_ok=True)
            writers[path](path)
    return demo_paths(out)


# --- atomic writes --------------------------------------------------------------------------

@contextmanager
def _temp_beside(path: Path) -> Iterator[Path]:
    """A temp file in ``path``'s folder, renamed onto ``path`` when the block succeeds."""
    fd, name = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    os.close(fd)
    tmp = Path(name)
    try:
        yield tmp
        tmp.chmod(0o644)  # mkstemp makes the file private; demo data is not
        os.replace(tmp, path)
    finally:
        tmp.unlink(missing_ok=True)


def _write_text(path: Path, text: str) -> None:
    with _temp_beside(path) as tmp:
        tmp.write_text(text, encoding="utf-8", newline="")


# --- shop.sqlite ----------------------------------------------------------------------------

SHOP_DDL = """
CREATE TABLE customers (
    customer_id INTEGER PRIMARY KEY,
    email TEXT NOT NULL UNIQUE,
    first_name TEXT NOT NULL,
    last_name TEXT NOT NULL,
    country TEXT NOT NULL,
    city TEXT,
    birth_date DATE,
    is_vip BOOLEAN NOT NULL,
    created_at TIMESTAMP NOT NULL,
    updated_at TIMESTAMP NOT NULL
);
CREATE TABLE products (
    product_id INTEGER PRIMARY KEY,
    sku TEXT NOT NULL UNIQUE,
    name TEXT NOT NULL,
    category TEXT NOT NULL,
    price REAL NOT NULL,
    weight_kg REAL,
    discontinued BOOLEAN NOT NULL,
    description TEXT,
    updated_at TIMESTAMP NOT NULL
);
CREATE TABLE orders (
    order_id INTEGER PRIMARY KEY,
    customer_id INTEGER NOT NULL REFERENCES customers (customer_id),
    order_date DATE NOT NULL,
    status TEXT NOT NULL,
    total_amount REAL NOT NULL,
    currency TEXT NOT NULL,
    coupon_code TEXT,
    shipped_at TIMESTAMP,
    updated_at TIMESTAMP NOT NULL
);
CREATE TABLE order_items (
    order_item_id INTEGER PRIMARY KEY,
    order_id INTEGER NOT NULL REFERENCES orders (order_id),
    product_id INTEGER NOT NULL REFERENCES products (product_id),
    quantity INTEGER NOT NULL,
    unit_price REAL NOT NULL,
    discount REAL,
    updated_at TIMESTAMP NOT NULL
);
CREATE INDEX orders_updated_at ON orders (updated_at);
CREATE INDEX order_items_order_id ON order_items (order_id);
"""


def _ts(value: datetime) -> str:
    """ISO text SQLite, SQLAlchemy and connectorx all read as a timestamp."""
    return value.strftime("%Y-%m-%d %H:%M:%S")


def _between(rng: random.Random, start: datetime, end: datetime) -> datetime:
    seconds = int((end - start).total_seconds())
    return start + timedelta(seconds=rng.randint(0, max(seconds, 0)))


def _money(value: float) -> float:
    return float(Decimal(str(value)).quantize(Decimal("0.01")))


def _customers(rng: random.Random) -> list[tuple]:
    rows = []
    for cid in range(1, CUSTOMERS + 1):
        first, last = rng.choice(FIRST_NAMES), rng.choice(LAST_NAMES)
        country = rng.choice(COUNTRIES)
        city = None if rng.random() < 0.05 else rng.choice(CITIES[country])
        birth = None if rng.random() < 0.2 else date(1950, 1, 1) + timedelta(days=rng.randint(0, 365 * 55))
        created = _between(rng, SHOP_START - timedelta(days=365), SHOP_END - timedelta(days=30))
        updated = _between(rng, created, SHOP_END)
        plain = unicodedata.normalize("NFKD", f"{first}.{last}").encode("ascii", "ignore").decode()
        local = plain.lower().replace(" ", "")
        rows.append((cid, f"{local}.{cid}@example.com", first, last, country, city,
                     birth.isoformat() if birth else None, int(rng.random() < 0.1), _ts(created), _ts(updated)))
    return rows


def _products(rng: random.Random) -> list[tuple]:
    rows = []
    categories = list(CATEGORIES)
    for pid in range(1, PRODUCTS + 1):
        category = categories[(pid - 1) % len(categories)]
        name = f"{rng.choice(CATEGORIES[category])} {rng.choice(('Classic', 'Bio', 'Premium', 'Mini', 'XL'))}"
        price = _money(rng.uniform(3, 40) if category in ("coffee", "tea") else rng.uniform(8, 180))
        weight = None if rng.random() < 0.15 else round(rng.uniform(0.1, 3.0), 3)
        description = None if rng.random() < 0.3 else f"{name}, category {category}."
        updated = _between(rng, SHOP_START, SHOP_END)
        rows.append((pid, product_sku(pid), name, category, price, weight, int(rng.random() < 0.08),
                     description, _ts(updated)))
    return rows


def product_sku(product_id: int) -> str:
    """The SKU of a demo product (shared by shop.sqlite and prices.parquet)."""
    return f"SKU-{product_id:05d}"


def _orders_and_items(rng: random.Random, prices: dict[int, float]) -> tuple[list[tuple], list[tuple]]:
    orders, items = [], []
    for oid in range(1, ORDERS + 1):
        placed = _between(rng, SHOP_START, SHOP_END - timedelta(days=3))
        status = rng.choice(ORDER_STATUSES)
        shipped = placed + timedelta(hours=rng.randint(4, 72)) if status in ("shipped", "delivered", "returned") \
            else None
        updated = _between(rng, shipped or placed, min(placed + timedelta(days=30), SHOP_END))
        total = 0.0
        for _ in range(rng.choice((1, 1, 2, 2, 3, 4))):
            pid = rng.randint(1, PRODUCTS)
            quantity = rng.choice((1, 1, 1, 2, 3))
            discount = None if rng.random() < 0.8 else rng.choice((0.05, 0.1, 0.2))
            total += prices[pid] * quantity * (1 - (discount or 0))
            items.append((len(items) + 1, oid, pid, quantity, prices[pid], discount, _ts(updated)))
        coupon = None if rng.random() < 0.85 else rng.choice(("WELCOME10", "SPRING24", "VIP20"))
        orders.append((oid, rng.randint(1, CUSTOMERS), placed.date().isoformat(), status, _money(total), "EUR",
                       coupon, _ts(shipped) if shipped else None, _ts(updated)))
    return orders, items


def shop_rows() -> dict[str, list[tuple]]:
    """The rows of every table of shop.sqlite, parents first."""
    rng = random.Random(SEED)
    customers = _customers(rng)
    products = _products(rng)
    orders, items = _orders_and_items(rng, {p[0]: p[4] for p in products})
    return {"customers": customers, "products": products, "orders": orders, "order_items": items}


def _write_shop(path: Path) -> None:
    with _temp_beside(path) as tmp:
        connection = sqlite3.connect(tmp)
        try:
            connection.execute("PRAGMA foreign_keys = ON")
            connection.executescript(SHOP_DDL)
            with connection:
                for table, rows in shop_rows().items():
                    marks = ", ".join("?" * len(rows[0]))
                    connection.executemany(f"INSERT INTO {table} VALUES ({marks})", rows)
        finally:
            connection.close()


# --- files ----------------------------------------------------------------------------------

def _stores_csv() -> str:
    rng = random.Random(SEED + 1)
    buffer = io.StringIO()
    writer = csv.writer(buffer, lineterminator="\n")
    writer.writerow(["store_id", "store_name", "city", "country", "opened_on", "square_meters",
                     "manager_email", "is_open", "updated_at"])
    for sid in range(1, STORES + 1):
        country = COUNTRIES[(sid - 1) % len(COUNTRIES)]
        city = rng.choice(CITIES[country])
        opened = date(2010, 1, 1) + timedelta(days=rng.randint(0, 365 * 13))
        size = "" if rng.random() < 0.1 else rng.randint(60, 900)
        manager = "" if rng.random() < 0.15 else f"manager.{sid}@example.com"
        updated = _between(rng, SHOP_START, SHOP_END)
        writer.writerow([sid, f"Bean & Leaf {city} {sid}", city, country, opened.isoformat(), size, manager,
                         "false" if rng.random() < 0.1 else "true", _ts(updated)])
    return buffer.getvalue()


def _events_jsonl(day: date, index: int) -> str:
    rng = random.Random(SEED + 10 + index)
    start = datetime(day.year, day.month, day.day, tzinfo=UTC)
    times = sorted(start + timedelta(seconds=rng.randint(0, 86_399)) for _ in range(EVENTS_PER_DAY))
    lines = []
    for number, moment in enumerate(times, start=1):
        kind = rng.choice(EVENT_TYPES)
        device, os_name = rng.choice(DEVICES)
        properties: dict[str, object] = {"page": rng.choice(("/", "/coffee", "/tea", "/equipment", "/cart"))}
        if kind in ("add_to_cart", "purchase"):
            properties["product_id"] = rng.randint(1, PRODUCTS)
            properties["quantity"] = rng.choice((1, 1, 2))
        if kind == "purchase":
            properties["value_eur"] = _money(rng.uniform(5, 250))
        if kind == "search":
            properties["query"] = rng.choice(("espresso", "green tea", "grinder", "mug", "decaf"))
        event = {
            "event_id": f"evt-{day:%Y%m%d}-{number:05d}",
            "event_time": moment.strftime("%Y-%m-%dT%H:%M:%SZ"),
            "event_type": kind,
            "customer_id": None if rng.random() < 0.35 else rng.randint(1, CUSTOMERS),
            "session_id": f"s-{rng.getrandbits(48):012x}",
            "context": {"device": device, "os": os_name, "country": rng.choice(COUNTRIES),
                        "app_version": rng.choice(("3.1.0", "3.2.0", "3.2.1"))},
            "properties": properties,
        }
        lines.append(json.dumps(event, ensure_ascii=False, separators=(",", ":")))
    return "\n".join(lines) + "\n"


def prices_table():  # -> pyarrow.Table (pyarrow is imported lazily: only this file needs it)
    """The price list written to prices.parquet: one row per product and price date."""
    import pyarrow as pa

    rng = random.Random(SEED + 2)
    columns: dict[str, list] = {k: [] for k in ("product_id", "sku", "valid_from", "price", "list_price",
                                                "currency", "on_sale", "updated_at")}
    for valid_from in PRICE_DATES:
        for pid in range(1, PRODUCTS + 1):
            list_price = round(rng.uniform(3, 180), 2)
            on_sale = rng.random() < 0.15
            price = Decimal(str(list_price * (0.8 if on_sale else 1.0))).quantize(Decimal("0.01"))
            changed = datetime(valid_from.year, valid_from.month, valid_from.day, tzinfo=UTC) - timedelta(
                minutes=rng.randint(1, 7 * 24 * 60))
            for key, value in (("product_id", pid), ("sku", product_sku(pid)), ("valid_from", valid_from),
                               ("price", price), ("list_price", list_price), ("currency", "EUR"),
                               ("on_sale", on_sale), ("updated_at", changed)):
                columns[key].append(value)
    schema = pa.schema([
        ("product_id", pa.int64()), ("sku", pa.string()), ("valid_from", pa.date32()),
        ("price", pa.decimal128(10, 2)), ("list_price", pa.float64()), ("currency", pa.string()),
        ("on_sale", pa.bool_()), ("updated_at", pa.timestamp("us", tz="UTC")),
    ])
    return pa.table(columns, schema=schema)


def _write_prices(path: Path) -> None:
    import pyarrow.parquet as pq

    with _temp_beside(path) as tmp:
        pq.write_table(prices_table(), tmp)
