"""The session settings every SQL read relies on, set by the loader on every connection it opens.

A role or database can carry its own settings (``ALTER ROLE ... SET TimeZone = 'Asia/Tokyo'``,
``ALTER DATABASE ... SET extra_float_digits = 0``; MariaDB's global ``time_zone``). They change how
the server prints values, and so what a text-protocol driver (psycopg2, PyMySQL) hands over: a
``timestamptz`` of 9999-12-31 printed in Tokyo is in the year 10000, a double printed with
``extra_float_digits = 0`` is rounded to 15 digits. So the loader never reads with the server's
defaults: the settings below travel in the connection URL, which SQLAlchemy (the pyarrow and
sqlalchemy backends, discovery, test-connection, reconcile) and connectorx both connect with.

- PostgreSQL: ``options=-c TimeZone=UTC -c extra_float_digits=3 -c IntervalStyle=iso_8601 -c
  DateStyle=ISO`` (libpq's startup options: they win over role and database settings; a user's own
  ``options`` are kept in front of them).
- MySQL / MariaDB through PyMySQL: ``init_command`` sets ``time_zone = '+00:00'`` (TIMESTAMP values
  in UTC) and drops ``PAD_CHAR_TO_FULL_LENGTH`` from ``sql_mode`` (CHAR values without trailing
  blanks). connectorx's MySQL reader takes no such parameter: a table with a TIMESTAMP column is
  read with pyarrow unless the server's default time zone is UTC (see ``type_rules``).

The settings are the drivers' own URL parameters, so a ``url:`` naming another driver is left as is.

Example::

    url = with_session_settings(sa.make_url("postgresql+psycopg2://u@h/db"))
    url.query["options"]  # '-c TimeZone=UTC -c extra_float_digits=3 -c IntervalStyle=iso_8601 -c DateStyle=ISO'
"""

from __future__ import annotations

from collections.abc import Callable

import sqlalchemy as sa

POSTGRES_SETTINGS = {"TimeZone": "UTC", "extra_float_digits": "3", "IntervalStyle": "iso_8601", "DateStyle": "ISO"}
MYSQL_INIT = "SET time_zone = '+00:00', sql_mode = REPLACE(@@sql_mode, 'PAD_CHAR_TO_FULL_LENGTH', '')"


def _postgres(url: sa.URL) -> sa.URL:
    ours = " ".join(f"-c {name}={value}" for name, value in POSTGRES_SETTINGS.items())
    theirs = url.query.get("options")
    return url.update_query_dict({"options": f"{theirs} {ours}" if theirs else ours})


def _mysql(url: sa.URL) -> sa.URL:
    theirs = url.query.get("init_command")
    return url.update_query_dict({"init_command": f"{theirs}; {MYSQL_INIT}" if theirs else MYSQL_INIT})


# by the driver a URL names: the parameters are the driver's own
_SETTERS: dict[str, Callable[[sa.URL], sa.URL]] = {"psycopg2": _postgres, "psycopg": _postgres, "pymysql": _mysql}


def with_session_settings(url: sa.URL) -> sa.URL:
    """``url`` with the session settings of its driver (unchanged for drivers that need none)."""
    setter = _SETTERS.get(url.get_driver_name())
    return setter(url) if setter else url
