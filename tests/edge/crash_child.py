"""A device app in its own process, for crash tests: starts an Updater, reports what it serves as JSON.

    python crash_child.py '<json config>'

Test-only hook: loading a model file whose name holds `crash_sha16` ends the process at
once with exit code 70 (`os._exit`: no cleanup, no flush), as a native crash or an OOM
kill would. Nothing else about the updater is changed.
"""

from __future__ import annotations

import json
import os
import sys
from pathlib import Path
from typing import Any

CRASH_EXIT = 70


def main(config: dict[str, Any]) -> None:
    import edge
    from edge import _updater
    from edge.manifest import load_public_key

    crash = config.get("crash_sha16")
    real_classifier = _updater.Classifier

    def classifier(path: Path, **kw: Any) -> Any:
        if crash and crash in Path(path).name:
            os._exit(CRASH_EXIT)
        return real_classifier(path, **kw)

    _updater.Classifier = classifier  # type: ignore[assignment,misc]
    options = edge.UpdaterOptions(
        registry_url=config["registry_url"],
        model="shelf-products",
        store_dir=Path(config["store_dir"]),
        public_keys={k: load_public_key(v) for k, v in config["public_keys"].items()},
        api_key=config.get("api_key"),
        runtime="onnxruntime",
        mode=edge.UpdateMode(config["mode"]),
        device=edge.DeviceInfo(device_id="crash-device", device_class="ci-x86", app_version="1.0"),
        health=edge.HealthOptions(latency_budget_ms=5000),
        allow_label_changes=True,
    )
    updater = edge.Updater(options)
    updater.start()
    try:
        rows = updater.telemetry._db.execute("SELECT body FROM events ORDER BY seq").fetchall()
        events = [json.loads(body) for (body,) in rows]
        report = {
            "version": updater.model.version,
            "status": updater.last_result.status.value if updater.last_result else None,
            "blocked": [[b.version, b.reason] for b in updater.store.state().blocked],
            "rollbacks": [e for e in events if e["kind"] == "rollback"],
        }
    finally:
        updater.close()
    sys.stdout.write(json.dumps(report) + "\n")


if __name__ == "__main__":
    main(json.loads(sys.argv[1]))
