"""Helpers of the tuning-database tests: a throwaway PostgreSQL server, workloads, and the
worker process of the concurrency tests (a module of its own, importable by spawned children)."""

from __future__ import annotations

import os
import random
import shutil
import socket
import subprocess
import tempfile
import time
import traceback
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from woodpecker.database import Workload, open_database


def make_workload(key: str = "cpu.conv.1x64x56x56.ab12cd34ef56", **changes: Any) -> Workload:
    fields = {
        "key": key,
        "target": "cpu",
        "device": "AMD EPYC avx2 2t",
        "kind": "conv",
        "template": "cpu.conv",
        "description": "conv 1x64x56x56 * 64x64x3x3 -> 1x64x56x56 +relu",
        "flops": 231_211_008,
        "arg_shapes": ((1, 64, 56, 56), (64, 64, 3, 3), (64,)),
        "output_shape": (1, 64, 56, 56),
        "num_weights": 2,
        "kernel_name": "k0_conv",
        "module_text": "func.func @main() { ... }\n" * 2000,  # ~50 KB, like a real kernel module
    }
    fields.update(changes)
    return Workload(**fields)


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


@dataclass
class PostgresServer:
    """A PostgreSQL server on loopback in a temporary directory (stopped by `stop`)."""

    root: Path
    port: int
    databases: int = 0
    _as_postgres: list[str] = field(default_factory=list)

    @classmethod
    def start(cls) -> PostgresServer:
        """Starts one; RuntimeError with the reason when it cannot."""
        for tool in ("initdb", "pg_ctl"):
            if shutil.which(tool) is None:
                raise RuntimeError(f"{tool} is not on PATH")
        prefix: list[str] = []
        root = Path(tempfile.mkdtemp(prefix="wpk-pg-"))
        if os.geteuid() == 0:  # initdb refuses root: run the server as the postgres system user
            runuser = shutil.which("runuser")
            if runuser is None:
                raise RuntimeError("running as root without runuser to start PostgreSQL as 'postgres'")
            try:
                shutil.chown(root, user="postgres")
            except (LookupError, OSError) as error:
                raise RuntimeError(f"no usable 'postgres' system user ({error})") from None
            prefix = [runuser, "-u", "postgres", "--"]
        server = cls(root, free_port(), _as_postgres=prefix)
        server._run("initdb", "-D", str(root / "data"), "-A", "trust", "-U", "wpk", "-E", "UTF8", "--no-sync")
        options = (
            f"-k {root} -p {server.port} -c listen_addresses=127.0.0.1 -c fsync=off "
            f"-c synchronous_commit=off -c full_page_writes=off -c max_connections=60"
        )
        data, log = str(root / "data"), str(root / "log")
        server._run("pg_ctl", "-D", data, "-l", log, "-o", options, "-w", "-t", "30", "start")
        return server

    def _run(self, *command: str) -> None:
        result = subprocess.run([*self._as_postgres, *command], capture_output=True, text=True, timeout=60)
        if result.returncode != 0:
            log = self.root / "log"
            tail = log.read_text()[-500:] if log.exists() else ""
            raise RuntimeError(f"{command[0]} failed: {(result.stderr or result.stdout).strip()[-500:]} {tail}")

    def url(self, database: str = "postgres") -> str:
        return f"postgresql://wpk@127.0.0.1:{self.port}/{database}"

    def new_database(self) -> str:
        """A fresh, empty database's URL."""
        import psycopg2

        self.databases += 1
        name = f"wpk_test_{self.databases}"
        conn = psycopg2.connect(host="127.0.0.1", port=self.port, user="wpk", dbname="postgres")
        conn.autocommit = True
        with conn.cursor() as cursor:
            cursor.execute(f"CREATE DATABASE {name}")
        conn.close()
        return self.url(name)

    def execute(self, url: str, sql: str) -> None:
        import psycopg2

        conn = psycopg2.connect(url)
        conn.autocommit = True
        with conn.cursor() as cursor:
            cursor.execute(sql)
        conn.close()

    def stop(self) -> None:
        try:
            self._run("pg_ctl", "-D", str(self.root / "data"), "-m", "immediate", "-w", "stop")
        finally:
            shutil.rmtree(self.root, ignore_errors=True)


SPACE = [
    {"tile": tile, "unroll": unroll, "vec": (vec, 1)}
    for tile in (8, 16, 32, 64)
    for unroll in (1, 2, 4)
    for vec in (4, 8)
]


def claim_worker(url: str, key: str, budget: int, seed: int, barrier: Any, results: Any) -> None:
    """A tuning worker: proposes configurations of SPACE at random, claims them, "measures" them
    (some fail, some are given up unmeasured), until the workload has `budget` finished trials;
    then confirms its own complete trials. Puts what it did (or its error) on `results`."""
    report: dict[str, Any] = {"seed": seed, "finished": [], "released": 0, "refused": 0, "errors": []}
    try:
        rng = random.Random(seed)
        with open_database(url) as db:
            barrier.wait(timeout=60)
            deadline = time.monotonic() + 40
            while db.counts([key])[key].finished < budget:
                if time.monotonic() > deadline:
                    raise TimeoutError(f"worker {seed}: no end after 40 s")
                config = rng.choice(SPACE)
                claim = db.claim(key, config, strategy="random", budget=budget, lease_s=120)
                if claim is None:
                    report["refused"] += 1
                    time.sleep(0.0005)
                    continue
                time.sleep(rng.uniform(0, 0.002))
                roll = rng.random()
                if roll < 0.1:
                    db.release(claim)
                    report["released"] += 1
                    continue
                failed = roll < 0.25
                trial = db.finish(
                    claim,
                    seconds=None if failed else 0.001 + rng.random(),
                    times=[0.001, 0.002],
                    error="wrong output" if failed else None,
                )
                report["finished"].append((trial.number, trial.config_key, trial.state, trial.seconds))
            mine = {number: seconds * 0.9 for number, _, state, seconds in report["finished"] if state == "complete"}
            db.confirm(key, mine)
    except Exception:
        report["errors"].append(traceback.format_exc())
    results.put(report)


def throughput_worker(url: str, key: str, operations: int, offset: int, barrier: Any, results: Any) -> None:
    """Claims and finishes `operations` distinct configurations of `key` as fast as it can; puts
    (seconds, done, error) on `results`."""
    try:
        with open_database(url) as db:
            barrier.wait(timeout=60)
            start = time.perf_counter()
            done = 0
            for index in range(operations):
                claim = db.claim(key, {"i": offset + index}, strategy="bench", budget=10**9)
                if claim is not None:
                    db.finish(claim, seconds=0.001, times=[0.001])
                    done += 1
            results.put((time.perf_counter() - start, done, None))
    except Exception:
        results.put((0.0, 0, traceback.format_exc()))
