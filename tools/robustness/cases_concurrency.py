"""Concurrency and interruption of `wpk tune`: 2 and 4 processes on one storage divide the work
(every workload exactly --trials finished trials, none measured twice, none lost), Ctrl-C ends
with a summary and keeps what was finished, a killed tuner resumes within its budget.

The workers are tests/py/tune_worker.py (the real command line, with a runner that sleeps a
fixed time per measurement), as in tests/py/test_tune_workers.py."""

from __future__ import annotations

from textwrap import dedent

from case import Case

K = "concurrency"

SHARED = dedent("""
    import json, os, signal, subprocess, sys, time
    from woodpecker.database import COMPLETE, RUNNING, open_database
    from woodpecker.models import bundled_model_path
    WORKER = REPO / "tests" / "py" / "tune_worker.py"
    KERNELS, TRIALS = ("k0_conv", "k2_conv"), 6

    def tune_args(db, seed):
        args = ["tune", str(bundled_model_path()), "--db", db, "--trials", str(TRIALS), "--strategy", "ga",
                "--in-process", "--no-progress", "--confirm", "0", "--seed", str(seed)]
        for kernel in KERNELS:
            args += ["--kernel", kernel]
        return args

    def start(db, index, workers, sleep_s=0.05):
        log = Path(f"calls-{index}.json")
        command = [sys.executable, str(WORKER), str(sleep_s), "barrier", str(workers), str(log), "--",
                   *tune_args(db, index)]
        return subprocess.Popen(command, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True), log

    def trials_of(db):
        with open_database(db) as database:
            return database.trials(database.keys())

    def check_budget(db, outputs, logs, require_every_worker=True):
        for out in outputs:
            if "Traceback" in out:
                verdict("traceback", [l for l in out.strip().splitlines() if l.strip()][-1][:200])
        trials = trials_of(db)
        if len(trials) != len(KERNELS):
            wrong(f"{len(trials)} workloads recorded, expected {len(KERNELS)}")
        for key, ts in trials.items():
            done = [t for t in ts if t.state == COMPLETE]
            if len(done) != TRIALS or len({t.config_key for t in done}) != len(done):
                wrong(f"{key[:40]}: {len(done)} finished trials ({len({t.config_key for t in done})} distinct), "
                      f"budget {TRIALS}")
            if any(t.state == RUNNING for t in ts):
                wrong(f"{key[:40]}: a claim is left running")
            if sum(t.is_default for t in done) != 1:
                wrong(f"{key[:40]}: the default measured {sum(t.is_default for t in done)} times")
        measured = [tuple(entry[:2]) for log in logs if log.exists() for entry in json.loads(log.read_text())]
        if len(measured) != len(set(measured)):
            wrong(f"{len(measured) - len(set(measured))} configurations measured twice")
        kept = {(t.key, t.config_key) for ts in trials.values() for t in ts if t.state == COMPLETE}
        if set(measured) - kept:
            wrong(f"{len(set(measured) - kept)} measurements lost (measured, not recorded)")
        correct(f"{len(KERNELS)} workloads x {TRIALS} trials, each measured once")
""")

CASES: list[Case] = []
for backend, suffix in (("sqlite", "tuning.db"), ("journal", "tuning.journal")):
    for workers in (2, 4):
        CASES.append(Case(K, f"{workers}-workers-{backend}", SHARED + dedent(f"""
            processes = [start({suffix!r}, i, {workers}) for i in range({workers})]
            outputs = []
            for process, _ in processes:
                outputs.append(process.communicate(timeout=100)[0])
            bad = [(p.returncode, o) for (p, _), o in zip(processes, outputs) if p.returncode != 0]
            if bad:
                code, out = bad[0]
                last = [l for l in out.strip().splitlines() if l.strip()][-1:] or [""]
                verdict("traceback" if "Traceback" in out else "wrong-answer",
                        f"a worker ended with status {{code}}: {{last[0][:200]}}")
            check_budget({suffix!r}, outputs, [log for _, log in processes])
        """), timeout_s=120.0, note=f"{workers} wpk tune processes on one {backend} storage"))  # fmt: skip
    CASES.append(Case(K, f"rerun-adds-nothing-{backend}", SHARED + dedent(f"""
        for round in range(2):
            process, log = start({suffix!r}, round, 1)
            out = process.communicate(timeout=100)[0]
            if process.returncode != 0:
                verdict("traceback" if "Traceback" in out else "wrong-answer", out.strip().splitlines()[-1][:200])
        check_budget({suffix!r}, [out], [Path("calls-0.json")])
    """), timeout_s=120.0, note="a second run on a finished study measures nothing more"))  # fmt: skip
    for sig in ("SIGINT", "SIGKILL"):
        CASES.append(Case(K, f"{sig.lower()}-during-tune-{backend}", SHARED + dedent(f"""
            process, log = start({suffix!r}, 0, 1, sleep_s=0.5)
            deadline = time.monotonic() + 60
            while time.monotonic() < deadline:  # wait for the first finished trial
                time.sleep(0.5)
                if Path({suffix!r}).exists():
                    try:
                        if any(t.state == COMPLETE for ts in trials_of({suffix!r}).values() for t in ts):
                            break
                    except Exception:
                        pass
            process.send_signal(signal.{sig})
            out = process.communicate(timeout=30)[0]
            tail = [l for l in out.strip().splitlines() if l.strip()][-1:] or [""]
            if "Traceback" in out:
                verdict("traceback", tail[0][:200])
            if "{sig}" == "SIGINT" and process.returncode not in (0, 1, 2, 130):
                wrong(f"Ctrl-C ended with status {{process.returncode}}: {{tail[0][:160]}}")
            kept = trials_of({suffix!r})
            if any(t.state == RUNNING for ts in kept.values() for t in ts) and "{sig}" == "SIGINT":
                wrong("Ctrl-C left a claim running")
            # resume: a second run completes the budget exactly
            resumed, _ = start({suffix!r}, 1, 1)
            out2 = resumed.communicate(timeout=100)[0]
            if resumed.returncode != 0:
                verdict("traceback" if "Traceback" in out2 else "wrong-answer", out2.strip().splitlines()[-1][:200])
            check_budget({suffix!r}, [out2], [Path("calls-1.json")], require_every_worker=False)
        """), timeout_s=150.0, note=f"{sig} during wpk tune, then a resumed run"))  # fmt: skip
CASES.append(
    Case(
        K,
        "4-workers-postgresql",
        dedent("""
    import os
    url = os.environ.get("WPK_ROBUSTNESS_POSTGRES_URL")
    skip("needs a PostgreSQL server: set WPK_ROBUSTNESS_POSTGRES_URL (tests/py/test_tune_workers.py covers it)")
"""),
        note="PostgreSQL needs a running server",
    )
)
