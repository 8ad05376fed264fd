"""The covariance convention as one type: parsing (old records included), ddof, and statistics that match numpy."""

from __future__ import annotations

import json
import warnings

import numpy as np
import pytest

from fidlens.core.errors import StatisticsError
from fidlens.metrics.comparability import Side, check_comparable, known_convention
from fidlens.metrics.covariance import Covariance
from fidlens.metrics.stats import Statistics

ASSUMED = "unbiased (assumed: file has no 'covariance' key)"  # what Statistics.load fills in for pytorch-fid files


def test_values_are_the_recorded_strings():
    assert Covariance.UNBIASED == "unbiased" and Covariance.POPULATION == "population"
    assert [c.value for c in Covariance] == ["unbiased", "population"]
    for c in Covariance:  # never "Covariance.UNBIASED" in a record, a message or JSON
        assert str(c) == f"{c}" == c.value
        assert json.dumps({"covariance": c}) == json.dumps({"covariance": c.value})


def test_ddof_and_flag():
    assert Covariance.UNBIASED.ddof == 1 and Covariance.POPULATION.ddof == 0
    assert Covariance.UNBIASED.unbiased is True and Covariance.POPULATION.unbiased is False


@pytest.mark.parametrize(("value", "expected"), [
    (Covariance.UNBIASED, Covariance.UNBIASED),
    (Covariance.POPULATION, Covariance.POPULATION),
    ("unbiased", Covariance.UNBIASED),
    ("population", Covariance.POPULATION),
    (" population ", Covariance.POPULATION),
    (ASSUMED, Covariance.UNBIASED),
])
def test_parse_accepts_the_enum_the_strings_and_old_records(value, expected):
    assert Covariance.parse(value) is expected


@pytest.mark.parametrize("value", ["", "N-1", "Unbiased", "biased", "unknown", None, 1, True])
def test_parse_refuses_anything_else_in_one_line(value):
    with pytest.raises(StatisticsError, match="covariance must be one of unbiased, population") as caught:
        Covariance.parse(value)
    assert "\n" not in str(caught.value)


def test_read_tells_a_record_from_a_guess():
    assert Covariance.read("population") is Covariance.POPULATION
    assert Covariance.read(ASSUMED) is Covariance.UNBIASED
    assert Covariance.read(ASSUMED, assumed=False) is None  # a guess cannot be compared
    for unknown in (None, "", "unknown", "null", 3):
        assert Covariance.read(unknown) is None


@pytest.mark.parametrize(("covariance", "ddof"), [("unbiased", 1), ("population", 0),
                                                  (Covariance.UNBIASED, 1), (Covariance.POPULATION, 0)])
def test_statistics_match_numpy_cov(covariance, ddof):
    rng = np.random.default_rng(5)
    features = rng.normal(size=(40, 6)).astype(np.float32) * 3 + 1
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # few samples for the dimension is fine here
        stats = Statistics.from_features(features, covariance=covariance)
    x = features.astype(np.float64)
    np.testing.assert_allclose(stats.mu, x.mean(axis=0), rtol=1e-12)
    np.testing.assert_allclose(stats.sigma, np.cov(x, rowvar=False, ddof=ddof), rtol=1e-10, atol=1e-12)
    np.testing.assert_allclose(stats.sigma, np.cov(x, rowvar=False, ddof=Covariance.parse(covariance).ddof),
                               rtol=1e-10, atol=1e-12)
    assert type(stats.meta["covariance"]) is str  # a plain string is recorded, as before the enum
    assert stats.meta["covariance"] == Covariance.parse(covariance).value


def test_files_written_and_old_files_load_alike(tmp_path):
    rng = np.random.default_rng(0)
    mu, sigma = rng.normal(size=4), np.eye(4)
    Statistics(mu=mu, sigma=sigma, meta={"covariance": "population"}).save(tmp_path / "old.npz")
    np.savez(tmp_path / "pytorch_fid.npz", mu=mu, sigma=sigma)  # no covariance key at all
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        new = Statistics.from_features(rng.normal(size=(10, 4)), covariance=Covariance.POPULATION)
    new.save(tmp_path / "new.npz")
    with np.load(tmp_path / "new.npz") as raw:
        assert str(raw["covariance"]) == "population" and raw["covariance"].dtype.kind == "U"
    old, plain, new = (Statistics.load(tmp_path / f"{n}.npz") for n in ("old", "pytorch_fid", "new"))
    assert Covariance.parse(old.meta["covariance"]) is Covariance.parse(new.meta["covariance"]) is Covariance.POPULATION
    assert plain.meta["covariance"] == ASSUMED and Covariance.parse(plain.meta["covariance"]) is Covariance.UNBIASED
    # comparability: a recorded convention is compared, a guess is unknown (not refused)
    assert known_convention(old.meta, "covariance") == known_convention(new.meta, "covariance") == "population"
    assert known_convention(plain.meta, "covariance") is None
    check_comparable(Side("old", old.meta), Side("new", new.meta), keys=("covariance",))
    check_comparable(Side("plain", plain.meta), Side("new", new.meta), keys=("covariance",))
    with pytest.raises(StatisticsError, match="covariance conventions"):
        check_comparable(Side("old", old.meta), Side("u", {"covariance": "unbiased"}), keys=("covariance",))
