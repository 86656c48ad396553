"""The worker process of `IsolatedCpuRunner`: one JSON request per line on stdin
({"task", "config", "options"}), one MeasureResult (JSON) per line on stdout.

Only the protocol goes to stdout; anything the compiler prints goes to stderr.
"""

from __future__ import annotations

import json
import os
import resource
import signal
import sys

from woodpecker.errors import WoodpeckerError
from woodpecker.measure.cpu_runner import CpuMeasureOptions, InProcessCpuRunner
from woodpecker.measure.task_json import task_from_json
from woodpecker.runtime import bundle


class RequestError(WoodpeckerError, ValueError):
    """A request line that is not {"task": ..., "config": {...}, "options": {...}}."""


def main() -> int:
    # Ctrl-C reaches the whole process group: the tuner (the parent) handles it and ends this
    # worker by closing its stdin or killing it; a KeyboardInterrupt here would only print a traceback.
    signal.signal(signal.SIGINT, signal.SIG_IGN)
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
            settings = bundle.field(request, "options", dict, RequestError, "request")
            config = bundle.field(request, "config", dict, RequestError, "request")
            task = task_from_json(request.get("task"), RequestError, "request task")
            key = json.dumps(settings, sort_keys=True)
            if key not in runners:
                runners[key] = InProcessCpuRunner(CpuMeasureOptions(**settings))
            result = runners[key].measure_one(task, config).to_json()
        except Exception as err:  # a malformed request: report it, keep serving
            result = {"fatal": f"worker could not handle the request: {type(err).__name__}: {err}"}
        protocol.write(json.dumps(result) + "\n")
        protocol.flush()
    return 0


if __name__ == "__main__":
    sys.exit(main())
