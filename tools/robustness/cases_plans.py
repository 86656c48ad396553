"""Tampered saved CUDA plans (made without a GPU, fixtures.py): every path a manifest names stays
inside its directory and is a bounded regular file, every name written is sanitized, and
malformed JSON is an error, never a traceback, a hang, or a file read from outside."""

from __future__ import annotations

from dataclasses import replace
from textwrap import dedent

from case import Case

K = "plans"

PRELUDE = dedent("""
    import json, woodpecker
    plan = fixture("cuda_plan")
    data = json.loads((plan / "plan.json").read_text())
    Path("outside.bin").write_bytes(b"\\x00" * 64)
    def kernel0():
        return next(k for s in data["steps"] for k in s["kernels"])
    def write(obj):
        (plan / "plan.json").write_text(obj if isinstance(obj, str) else json.dumps(obj))
    def load():
        return api(lambda: woodpecker.load(str(plan)))
""")

TAMPER = {  # name: statements that change `data`/the directory, then the plan is loaded
    "ptx-absolute-path": 'kernel0()["ptx"] = "/etc/passwd"; write(data)',
    "ptx-dotdot-path": 'kernel0()["ptx"] = "../outside.bin"; write(data)',
    "ptx-fifo": 'mkfifo(str(plan / "k.ptx")); kernel0()["ptx"] = "k.ptx"; write(data)',
    "ptx-dev-zero": 'kernel0()["ptx"] = "/dev/zero"; write(data)',
    "ptx-symlink-outside": '(plan / "l.ptx").symlink_to("/etc/passwd"); kernel0()["ptx"] = "l.ptx"; write(data)',
    "ptx-a-directory": '(plan / "d.ptx").mkdir(); kernel0()["ptx"] = "d.ptx"; write(data)',
    "ptx-missing": 'kernel0()["ptx"] = "nope.ptx"; write(data)',
    "cubin-dotdot-path": 'kernel0()["cubin"] = "../outside.bin"; write(data)',
    "cubin-dev-zero": 'kernel0()["cubin"] = "/dev/zero"; write(data)',
    "weights-absolute": 'data["weights"] = str(Path("outside.bin").resolve()); write(data)',
    "weights-dotdot": 'data["weights"] = "../outside.bin"; write(data)',
    "weights-dev-zero": 'data["weights"] = "/dev/zero"; write(data)',
    "weights-fifo": 'mkfifo(str(plan / "w.npy")); data["weights"] = "w.npy"; write(data)',
    "weights-npy-huge-header": '(plan / "weights.npy").write_bytes(b"\\x93NUMPY\\x01\\x00v\\x00{\'descr\': \'<f4\', '
                               '\'fortran_order\': False, \'shape\': (1099511627776,), }" + b" " * 50 + b"\\n")',
    "weights-npy-object-pickle": 'np.save(plan / "weights.npy", np.array([{"a": 1}], dtype=object), allow_pickle=True)',
    "weights-npy-truncated": 'raw = (plan / "weights.npy").read_bytes(); (plan / "weights.npy").write_bytes(raw[:100])',
    "weights-npy-wrong-dtype": 'np.save(plan / "weights.npy", np.zeros(data["weight_bytes"] // 8, np.float64))',
    "weights-npy-garbage": '(plan / "weights.npy").write_bytes(b"garbage" * 100)',
    "plan-json-list": "write([1, 2, 3])",
    "plan-json-string": 'write(json.dumps("plan"))',
    "plan-json-null": 'write("null")',
    "plan-json-deep-nesting": 'write("[" * 200000 + "]" * 200000)',
    "plan-json-deep-dict": 'write(\'{"a":\' * 100000 + "1" + "}" * 100000)',
    "plan-json-invalid": 'write("{not json")',
    "plan-json-huge": 'write("{" + " " * (300 << 20) + "}")',
    "plan-json-fifo": '(plan / "plan.json").unlink(); mkfifo(str(plan / "plan.json"))',
    "plan-json-dev-zero-symlink": '(plan / "plan.json").unlink(); (plan / "plan.json").symlink_to("/dev/zero")',
    "plan-json-a-directory": '(plan / "plan.json").unlink(); (plan / "plan.json").mkdir()',
    "missing-steps": 'del data["steps"]; write(data)',
    "steps-a-dict": 'data["steps"] = {"a": 1}; write(data)',
    "steps-of-strings": 'data["steps"] = ["k0"]; write(data)',
    "arena-bytes-string": 'data["arena_bytes"] = "lots"; write(data)',
    "arena-bytes-negative": 'data["arena_bytes"] = -4096; write(data)',
    "arena-bytes-2^62": 'data["arena_bytes"] = 2**62; data["memory"]["arena_bytes"] = 2**62; write(data)',
    "buffer-shape-strings": 'data["buffers"][0]["shape"] = ["a", "b"]; write(data)',
    "buffer-negative-offset": 'data["buffers"][0]["offset"] = -100; write(data)',
    "buffers-of-ints": 'data["buffers"] = [1, 2]; write(data)',
    "grid-negative": 'kernel0()["grid"] = [-1, 1, 1]; write(data)',
    "grid-strings": 'kernel0()["grid"] = "big"; write(data)',
    "block-too-large": 'kernel0()["block"] = [4096, 4096, 64]; write(data)',
    "shared-bytes-huge": 'kernel0()["shared_bytes"] = 2**40; write(data)',
    "arg-unknown-buffer": 'kernel0()["args"][0]["buffer"] = "intermediate[999]"; write(data)',
    "arg-shape-larger-than-buffer": 'kernel0()["args"][0]["shape"] = [1, 3, 1000, 1000]; write(data)',
    "library-spec-shape-larger": ('lib = next(s for s in data["steps"] if s.get("library"))["library"]; '
                                  'lib["spec"]["x_shape"] = [64, 3, 512, 512]; write(data)'),
    "library-unknown": ('lib = next(s for s in data["steps"] if s.get("library"))["library"]; '
                        'lib["library"] = "../../libevil"; write(data)'),
    "library-spec-a-list": ('lib = next(s for s in data["steps"] if s.get("library"))["library"]; '
                            'lib["spec"] = [1]; write(data)'),
    "version-missing": 'del data["version"]; write(data)',
    "format-wrong": 'data["format"] = "something-else"; write(data)',
    "inputs-wrong-type": 'data["inputs"] = "x"; write(data)',
    "input-name-a-number": 'data["inputs"][0]["name"] = 7; write(data)',
    "element-type-bogus": 'data["element_type"] = "f128"; write(data)',
}  # fmt: skip

CASES: list[Case] = []
for name, tamper in TAMPER.items():
    code = PRELUDE + tamper + "\nloaded = load()\nwrong('loaded the tampered plan')\n"
    CASES.append(Case(K, name, code, needs=("cuda_plan",), note=tamper.split(";")[0][:80]))

ENTRY_NAMES = {"dotdot": "../../../escaped", "absolute": "/tmp/wpk-robustness-escaped", "slash": "a/b", "empty": ""}
for name, entry in ENTRY_NAMES.items():
    CASES.append(Case(K, f"save-entry-name-{name}", PRELUDE + dedent(f"""
        kernel0()["entry"] = {entry!r}
        write(data)
        loaded = load()
        import os, glob
        before = set(glob.glob("/tmp/wpk-robustness-escaped*")) | set(glob.glob("../../../escaped*"))
        api(lambda: loaded.save("again"))
        after = set(glob.glob("/tmp/wpk-robustness-escaped*")) | set(glob.glob("../../../escaped*"))
        for made in after - before:
            os.remove(made) if os.path.isfile(made) else None
        if after - before:
            wrong(f"save() wrote outside its directory: {{sorted(after - before)}}")
        inside = [str(p.relative_to("again")) for p in Path("again").rglob("*") if p.is_file()]
        if any(".." in p or p.startswith("/") or p.startswith(".") for p in inside):
            wrong(f"save() wrote odd names: {{inside}}")
        wrong("loaded and saved a plan whose kernel entry is {entry!r}")
    """), needs=("cuda_plan",), note=f"entry name {entry!r} becomes a file name on save()"))  # fmt: skip

# `wpk measure` batch directories (no GPU here: the directory must be refused, or the command
# says there is no GPU, before anything is read from outside).
BATCH = {
    "batch-json-list": 'Path("b").mkdir(); Path("b/batch.json").write_text("[1]")',
    "batch-json-deep": 'Path("b").mkdir(); Path("b/batch.json").write_text("[" * 200000 + "]" * 200000)',
    "batch-json-fifo": 'Path("b").mkdir(); mkfifo("b/batch.json")',
    "batch-json-dev-zero": 'Path("b").mkdir(); Path("b/batch.json").symlink_to("/dev/zero")',
    "batch-empty-dir": 'Path("b").mkdir()',
    "batch-candidate-dotdot": ('Path("b").mkdir(); Path("b/batch.json").write_text(json.dumps({"format": '
                               '"woodpecker.tune.batch", "version": 1, "candidates": [{"id": 0, "dir": "../../etc", '
                               '"config": {}}], "task": {}}))'),
}  # fmt: skip
for name, setup in BATCH.items():
    CASES.append(Case(K, f"measure-{name}", f"import json\n{setup}\ncli(['measure', 'b'])\n",
                      note="wpk measure on a tampered batch directory"))  # fmt: skip

# Run with --all only: kept out of the default run so that it stays within ~12 minutes.
EXTENDED = {
    "input-name-a-number",
    "plan-json-deep-dict",
    "weights-npy-wrong-dtype",
    "buffers-of-ints",
    "library-spec-a-list",
    "plan-json-string",
    "ptx-missing",
    "version-missing",
    "inputs-wrong-type",
    "block-too-large",
    "steps-of-strings",
    "element-type-bogus",
    "weights-npy-garbage",
    "grid-strings",
    "save-entry-name-empty",
    "ptx-a-directory",
    "cubin-dotdot-path",
    "arena-bytes-negative",
    "plan-json-null",
    "measure-batch-empty-dir",
    "buffer-negative-offset",
}
CASES = [replace(c, extended=True) if c.name in EXTENDED else c for c in CASES]
