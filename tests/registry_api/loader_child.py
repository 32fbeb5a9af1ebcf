"""A telemetry loader in its own process that dies (os._exit: no cleanup) at a chosen step of a chosen load.

python loader_child.py DATABASE_URL WAREHOUSE_URL ROWS_PER_LOAD STEP LOAD_NUMBER
"""

from __future__ import annotations

import os
import sys

from edgeloop import tables, warehouse
from registry_api import db
from registry_api.inbox import InboxLoader


def main() -> None:
    database, warehouse_url, rows, step, load_number = sys.argv[1:]
    seen = {"read": 0, "written": 0}

    def crash(at: str) -> None:
        seen[at] += 1
        if at == step and seen[at] == int(load_number):
            os._exit(9)  # as a SIGKILL would: no rollback sent, no file closed

    engine = db.make_engine(database)
    with warehouse.connect(warehouse_url) as wh:
        loader = InboxLoader(engine, lambda data: wh.insert_new_ndjson(tables.TELEMETRY_EVENTS, data), int(rows), crash)
        if not loader.acquire():
            sys.exit("lease held")
        loader.load_all()
    sys.exit(3)  # the crash point was never reached


if __name__ == "__main__":
    main()
