"""The checked reading of saved directories (woodpecker.runtime.bundle)."""

from __future__ import annotations

import os

import numpy as np
import pytest

from woodpecker.runtime import bundle


class Bad(ValueError):
    pass


def test_member_accepts_a_file_inside(tmp_path):
    (tmp_path / "a.bin").write_bytes(b"1234")
    assert bundle.member(tmp_path, "a.bin", Bad, size=4) == (tmp_path / "a.bin").resolve()
    assert bundle.read_bytes(tmp_path, "a.bin", Bad, max_bytes=4) == b"1234"


@pytest.mark.parametrize("name", ["/etc/passwd", "../x", "a/../../x", "", 3, None, "a\x00b"])
def test_member_refuses_paths_outside(tmp_path, name):
    with pytest.raises(Bad):
        bundle.member(tmp_path, name, Bad)


def test_member_refuses_a_link_out_a_fifo_a_directory_and_an_oversize_file(tmp_path):
    outside = tmp_path / "outside.txt"
    outside.write_text("secret")
    inner = tmp_path / "plan"
    inner.mkdir()
    (inner / "link").symlink_to(outside)
    os.mkfifo(inner / "fifo")
    (inner / "dir").mkdir()
    (inner / "big").write_bytes(b"x" * 100)
    for name, reason in [("link", "outside"), ("fifo", "regular"), ("dir", "regular"), ("missing", "cannot")]:
        with pytest.raises(Bad, match=reason):
            bundle.member(inner, name, Bad)
    with pytest.raises(Bad, match="more than"):
        bundle.read_bytes(inner, "big", Bad, max_bytes=10)
    with pytest.raises(Bad, match="says 10"):
        bundle.member(inner, "big", Bad, size=10)


@pytest.mark.parametrize(
    "text, reason",
    [
        ("[1, 2]", "not an object"),
        ('"plan"', "not an object"),
        ("{", "not JSON"),
        ("[" * 100000 + "]" * 100000, "nested|not JSON"),
        ('{"a":' * 70 + "1" + "}" * 70, "nested"),
    ],
)
def test_read_json_refuses_what_is_not_a_bounded_object(tmp_path, text, reason):
    (tmp_path / "m.json").write_text(text)
    with pytest.raises(Bad, match=reason):
        bundle.read_json(tmp_path, "m.json", Bad)


def test_load_npy_checks_the_header_before_reading(tmp_path):
    np.save(tmp_path / "w.npy", np.arange(6, dtype=np.float32))
    assert bundle.load_npy(tmp_path, "w.npy", Bad, dtype=np.float32, nbytes=24).tolist() == list(range(6))
    with pytest.raises(Bad, match="says 28"):
        bundle.load_npy(tmp_path, "w.npy", Bad, dtype=np.float32, nbytes=28)
    with pytest.raises(Bad, match="expected float64"):
        bundle.load_npy(tmp_path, "w.npy", Bad, dtype=np.float64)
    np.save(tmp_path / "o.npy", np.array([{"a": 1}], dtype=object), allow_pickle=True)
    with pytest.raises(Bad):
        bundle.load_npy(tmp_path, "o.npy", Bad, dtype=np.float32)
    # A header that promises far more data than the file has is refused without allocating it.
    header = {"descr": "<f4", "fortran_order": False, "shape": (1 << 40,)}
    with open(tmp_path / "huge.npy", "wb") as f:
        np.lib.format.write_array_header_1_0(f, header)
    with pytest.raises(Bad, match="truncated"):
        bundle.load_npy(tmp_path, "huge.npy", Bad, dtype=np.float32)


@pytest.mark.parametrize("name", ["k0_conv", "a.ptx", "x-1"])
def test_checked_name_accepts_plain_names(name):
    assert bundle.checked_name(name, Bad) == name


@pytest.mark.parametrize("name", ["../x", "a/b", ".hidden", "-rf", "", "x" * 201, 7])
def test_checked_name_refuses_the_rest(name):
    with pytest.raises(Bad):
        bundle.checked_name(name, Bad)


def test_field_checks_types():
    assert bundle.field({"n": 3}, "n", int, Bad, "plan") == 3
    for data in ({"n": "3"}, {"n": True}, {}, [1]):
        with pytest.raises(Bad, match="plan"):
            bundle.field(data, "n", int, Bad, "plan")


@pytest.mark.parametrize(
    "value, reason",
    [(True, "not an integer"), (1.0, "not an integer"), ("3", "not an integer"), (-1, "outside"), (1 << 60, "outside")],
)
def test_integer_refuses_other_types_and_ranges(value, reason):
    with pytest.raises(Bad, match=reason):
        bundle.integer(value, Bad, "x", maximum=1 << 48)
    assert bundle.integer(7, Bad, "x") == 7


def test_integers_objects_and_optional_check_their_shape():
    assert bundle.integers([1, 2, 3], Bad, "grid", length=3, minimum=1) == (1, 2, 3)
    for value in ("1x2", [1, 2], [1, 2, 0], [1, "2", 3], {"0": 1}):
        with pytest.raises(Bad):
            bundle.integers(value, Bad, "grid", length=3, minimum=1)
    with pytest.raises(Bad, match="17 entries"):
        bundle.integers([1] * 17, Bad, "shape")
    assert bundle.objects({"a": [{}, {"b": 1}]}, "a", Bad, "w") == [{}, {"b": 1}]
    for data in ({"a": [{}, 3]}, {"a": {}}, {"b": []}, []):
        with pytest.raises(Bad):
            bundle.objects(data, "a", Bad, "w")
    assert bundle.optional({"a": None}, "a", str, Bad, "w") is None
    assert bundle.optional({}, "a", str, Bad, "w") is None
    with pytest.raises(Bad, match="not str"):
        bundle.optional({"a": 3}, "a", str, Bad, "w")
    with pytest.raises(Bad, match="not one of"):
        bundle.text_field({"a": "heap"}, "a", Bad, "w", ("input", "weight"))


def test_a_file_replaced_by_a_fifo_after_the_check_is_not_opened_blocking(tmp_path, monkeypatch):
    (tmp_path / "a.bin").write_bytes(b"1234")
    checked = bundle.member(tmp_path, "a.bin", Bad)
    (tmp_path / "a.bin").unlink()
    os.mkfifo(tmp_path / "a.bin")
    monkeypatch.setattr(bundle, "member", lambda *args, **kwargs: checked)  # the race: checked, then swapped
    with pytest.raises(Bad, match="not a regular file"):
        bundle.read_bytes(tmp_path, "a.bin", Bad, max_bytes=10)
