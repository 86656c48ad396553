"""The CPU deployable format (`wpk compile --target cpu -o DIR`, `woodpecker.load`), where the
code supports it: each case first makes the directory; if `wpk compile` refuses `-o` for the
CPU, the case is skipped with that line as the reason."""

from __future__ import annotations

from textwrap import dedent

from case import Case

K = "cpu-deploy"

PRELUDE = dedent("""
    import json, subprocess, sys, woodpecker
    made = model([node("Conv", ["x", "w"], ["c"], pads=[1, 1, 1, 1]), node("Relu", ["c"], ["y"])],
                 [vi("x", [1, 3, 8, 8])], [vi("y", [1, 4, 8, 8])],
                 [init("w", np.random.default_rng(0).standard_normal((4, 3, 3, 3)).astype(np.float32))])
    save(made)
    made_dir = subprocess.run([sys.executable, "-m", "woodpecker.cli", "compile", "model.onnx", "--target", "cpu",
                               "-o", "dep", "--no-records", "--select", "heuristic"], capture_output=True, text=True)
    if made_dir.returncode != 0 or not Path("dep").is_dir():
        lines = [l for l in (made_dir.stderr + made_dir.stdout).strip().splitlines() if l.strip()] or ["no output"]
        skip(f"main has no CPU deployable format: {lines[-1][:160]}")
    manifests = sorted(p for p in Path("dep").iterdir() if p.suffix == ".json")
    manifest = manifests[0] if manifests else None
    data = json.loads(manifest.read_text()) if manifest else {}
    Path("outside.bin").write_bytes(b"\\x00" * 64)
    def paths(obj, out):
        if isinstance(obj, dict):
            for k, v in obj.items():
                paths(v, out) if not isinstance(v, str) else (out.append((obj, k)) if "." in v else None)
        elif isinstance(obj, list):
            for v in obj:
                paths(v, out)
        return out
    def load():
        return api(lambda: woodpecker.load("dep"))
""")
TAMPER = {
    "round-trip-matches-onnxruntime": None,
    "manifest-list": 'manifest.write_text("[1]")',
    "manifest-deep-nesting": 'manifest.write_text("[" * 200000 + "]" * 200000)',
    "manifest-fifo": "manifest.unlink(); mkfifo(str(manifest))",
    "file-paths-absolute": ("refs = paths(data, []); [o.__setitem__(k, '/etc/passwd') for o, k in refs]; "
                            "manifest.write_text(json.dumps(data))"),
    "file-paths-dotdot": ("refs = paths(data, []); [o.__setitem__(k, '../outside.bin') for o, k in refs]; "
                          "manifest.write_text(json.dumps(data))"),
    "file-paths-dev-zero": ("refs = paths(data, []); [o.__setitem__(k, '/dev/zero') for o, k in refs]; "
                            "manifest.write_text(json.dumps(data))"),
    "library-replaced-by-garbage": ('[p.write_bytes(b"garbage") for p in Path("dep").iterdir() '
                                    'if p.suffix in (".so", ".o", ".bc")]'),
}  # fmt: skip
CASES: list[Case] = []
for name, tamper in TAMPER.items():
    if tamper is None:
        body = dedent("""
            loaded = load()
            x = np.random.default_rng(1).standard_normal((1, 3, 8, 8)).astype(np.float32)
            got = api(lambda: loaded.run(None, {"x": x}))
            expected = ort_run("model.onnx", {"x": x})
            difference = compare(got, expected)
            wrong(difference) if difference else correct("the loaded CPU model equals ONNX Runtime")
        """)
    else:
        body = f"{tamper}\nloaded = load()\nwrong('loaded the tampered directory')\n"
    CASES.append(Case(K, name, PRELUDE + body, timeout_s=60.0, note="the CPU deployable format"))
