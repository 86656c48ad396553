"""The worker process of `IsolatedCpuRunner`: one JSON request per line on stdin
({"task", "config", "options"}), one MeasureResult (JSON) per line on stdout.

Only the protocol goes to stdout; anything the compiler prints goes to stderr.
"""

from __future__ import annotations

import json
import os
import resource
import sys

from woodpecker.measure.cpu_runner import CpuMeasureOptions, InProcessCpuRunner, task_from_json


def main() -> int:
    limit = os.environ.get("WOODPECKER_WORKER_MEMORY")
    if limit:
        resource.setrlimit(resource.RLIMIT_AS, (int(limit), int(limit)))
    protocol = os.fdopen(os.dup(sys.stdout.fileno()), "w")
    os.dup2(sys.stderr.fileno(), sys.stdout.fileno())  # stray prints cannot corrupt the protocol
    runners: dict[str, InProcessCpuRunner] = {}
    for line in sys.stdin:
        if not line.strip():
            continue
        try:
            request = json.loads(line)
            options = CpuMeasureOptions(**request["options"])
            key = json.dumps(request["options"], sort_keys=True)
            runner = runners.setdefault(key, InProcessCpuRunner(options))
            result = runner.measure_one(task_from_json(request["task"]), request["config"]).to_json()
        except Exception as err:  # a malformed request: report it, keep serving
            result = {"fatal": f"worker could not handle the request: {type(err).__name__}: {err}"}
        protocol.write(json.dumps(result) + "\n")
        protocol.flush()
    return 0


if __name__ == "__main__":
    sys.exit(main())
