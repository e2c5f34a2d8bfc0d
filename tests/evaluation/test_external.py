"""Samples made elsewhere: the levels of the file's integers are said or refused, never guessed;
an .npz of several arrays is read only by name; what was read is returned for results.json."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from genbench.core.spec import DataSpec
from genbench.evaluation.external import load_samples
from tests.commands import genbench_here

DIGITS = DataSpec(name="digits", kind="image", shape=(1, 8, 8), num_levels=17)
MNIST = DataSpec(name="mnist", kind="image", shape=(1, 28, 28), num_levels=256)
MOONS = DataSpec(name="moons", kind="points", shape=(2,), num_levels=None)


def _npy(tmp_path: Path, x: np.ndarray) -> Path:
    path = tmp_path / "samples.npy"
    np.save(path, x)
    return path


def _one_line_error(path: Path, spec: DataSpec, **kw) -> str:
    with pytest.raises(ValueError) as e:
        load_samples(path, spec, **kw)
    text = str(e.value)
    assert "\n" not in text
    return text


def test_integers_beyond_the_data_sets_levels_are_refused_without_levels(tmp_path):
    """The issue's case: 0..20 on digits (17 levels) was rescaled as if 8-bit and scored."""
    x = np.resize(np.arange(21), (3, 1, 8, 8))
    text = _one_line_error(_npy(tmp_path, x), DIGITS)
    assert "integers 0..20" in text and "digits images have 17 levels (0..16)" in text
    assert text.endswith("valid: levels=256 (8-bit, 0..255)")  # 17 levels cannot hold 20


def test_integers_that_fit_both_readings_are_refused_naming_both(tmp_path):
    """0..16 is digits' own range and a dark 8-bit image's alike: the user says which."""
    x = np.random.default_rng(0).integers(0, 17, (5, 8, 8, 1))
    text = _one_line_error(_npy(tmp_path, x), DIGITS)
    assert text.endswith("valid: levels=17 (0..16), levels=256 (8-bit, 0..255)")


def test_said_levels_map_to_the_data_sets_and_are_reported(tmp_path):
    values = np.array([0, 7, 8, 128, 247, 248, 255])  # v * 16 / 255: 0.44, 0.50, 8.03, 15.5, 15.56
    x = np.zeros((2, 1, 8, 8), np.uint8)
    x[0, 0, 0, : len(values)] = values
    samples, how = load_samples(_npy(tmp_path, x), DIGITS, levels=256)
    assert samples.dtype.is_floating_point is False and samples.shape == (2, 1, 8, 8)
    assert samples[0, 0, 0, : len(values)].tolist() == [0, 0, 1, 8, 15, 16, 16]
    assert how == {
        "array": None,
        "values": [0, 255],
        "levels": 256,
        "mapping": "round(v * 16 / 255)",
    }

    same, how = load_samples(_npy(tmp_path, np.full((2, 8, 8), 16)), DIGITS, levels=17)
    assert same.unique().tolist() == [16] and how["mapping"] == "as is"
    # a 17-level file scored on 8-bit data: 16 -> 255, 8 -> 127.5 -> 128
    up, _ = load_samples(_npy(tmp_path, np.full((2, 28, 28), 8)), MNIST, levels=17)
    assert up.unique().tolist() == [128]


def test_levels_that_do_not_hold_the_values_or_are_not_a_count_are_refused(tmp_path):
    path = _npy(tmp_path, np.full((2, 1, 8, 8), 20))
    text = _one_line_error(path, DIGITS, levels=17)
    assert text == "samples hold integers 20..20, beyond levels=17 (0..16)"
    for bad in (1, "abc", 2.5, True):
        assert _one_line_error(path, DIGITS, levels=bad).startswith(f"levels={bad!r}; valid: ")
    text = _one_line_error(_npy(tmp_path, np.full((2, 1, 8, 8), -1)), DIGITS, levels=256)
    assert "integers -1..-1" in text


def test_eight_bit_data_reads_eight_bit_integers_as_they_are(tmp_path):
    x = np.random.default_rng(0).integers(0, 256, (3, 28, 28), dtype=np.uint8)
    samples, how = load_samples(_npy(tmp_path, x), MNIST)
    assert np.array_equal(samples[:, 0].numpy(), x) and how["levels"] == 256
    text = _one_line_error(_npy(tmp_path, x.astype(np.int64) + 1), MNIST)  # 1..256
    assert text.endswith("valid: levels=N with N > 256")


def test_an_npz_of_several_arrays_is_read_only_by_name(tmp_path):
    images = np.full((4, 8, 8, 1), 16, np.uint8)
    path = tmp_path / "guided.npz"
    np.savez(path, arr_0=images, arr_1=np.arange(4))  # guided-diffusion: samples and labels
    text = _one_line_error(path, DIGITS, levels=17)
    assert text.endswith("holds 2 arrays; say which with key=NAME; valid: arr_0, arr_1")
    samples, how = load_samples(path, DIGITS, levels=17, key="arr_0")
    assert samples.shape == (4, 1, 8, 8) and how["array"] == "arr_0"
    text = _one_line_error(path, DIGITS, levels=17, key="samples")
    assert text == "key='samples' is not an array of guided.npz; valid: arr_0, arr_1"
    np.savez(tmp_path / "one.npz", images=images)
    assert load_samples(tmp_path / "one.npz", DIGITS, levels=17)[1]["array"] == "images"
    text = _one_line_error(_npy(tmp_path, images), DIGITS, levels=17, key="arr_0")
    assert "names an array of an .npz" in text


def test_points_take_no_levels(tmp_path):
    path = _npy(tmp_path, np.zeros((5, 2), np.float32))
    assert load_samples(path, MOONS)[1] == {"array": None}
    assert (
        _one_line_error(path, MOONS, levels=256)
        == "levels=256 applies to images; moons holds points"
    )


def test_eval_cli_refuses_levels_without_samples_in_one_line(tmp_path):
    args = ["floor=true", "levels=256", "dataset=moons", "eval=fast", f"hydra.run.dir={tmp_path}"]
    out = genbench_here("eval", *args)
    assert out.returncode == 1
    assert out.stderr.strip().splitlines() == [
        "genbench-eval: error: levels=256 describes samples=PATH, which is not given"
    ]
