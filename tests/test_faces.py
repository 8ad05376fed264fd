"""The face-presence rate: real faces are found, noise / black / grey never; input forms agree."""

from __future__ import annotations

import dataclasses
import re

import numpy as np
import pytest
import torch
from conftest import ORL, SG3_SAMPLES

from fidlens.cli.main import main
from fidlens.data.datasets import open_image_source
from fidlens.core.errors import FidlensError
from fidlens.studies.pairs.faces import (
    NO_FACE_SCORE,
    FaceDetector,
    FaceDetectorSettings,
    face_flags,
    face_presence_rate,
    grey_uint8,
)


@pytest.fixture(scope="module")
def detector() -> FaceDetector:
    return FaceDetector()


@pytest.fixture(scope="module")
def orl_faces() -> list[np.ndarray]:
    source = open_image_source(ORL)
    return [source[i] for i in range(0, len(source), 4)]  # 100 of 400: 10 people × 10 poses… spread over all


@pytest.fixture(scope="module")
def face(orl_faces) -> np.ndarray:
    return orl_faces[0]  # RGB with three equal channels, 112 × 92; the detector finds this one


@pytest.fixture(scope="module")
def colour_face() -> np.ndarray:
    return open_image_source(SG3_SAMPLES)[0]


def non_faces() -> list[np.ndarray]:
    rng = np.random.default_rng(7)
    noise = [rng.integers(0, 256, (s, s, 3), dtype=np.uint8) for s in (64, 256, 1024) for _ in range(8)]
    black = [np.zeros((s, s, 3), np.uint8) for s in (64, 256, 1024)]
    grey = [np.full((s, s), v, np.uint8) for s in (64, 256) for v in (1, 128, 254)]
    return noise + black + grey


@pytest.mark.slow
def test_real_orl_faces_are_found_at_a_high_rate(detector, orl_faces):
    flags = face_flags(detector.scores(orl_faces, progress=False))
    assert len(flags) == 100
    assert face_presence_rate(flags) >= 0.95  # 0.99 on all 400 with the default settings


def test_stylegan3_samples_are_found(detector):
    flags = face_flags(detector.scores(open_image_source(SG3_SAMPLES), progress=False))
    assert flags.sum() >= 10  # 11 of 12 with the default settings


def test_noise_black_and_grey_images_never_have_a_face(detector):
    scores = detector.scores(non_faces(), progress=False)
    assert np.all(scores == NO_FACE_SCORE)
    assert face_presence_rate(face_flags(scores)) == 0.0


def test_a_face_scores_above_non_faces(detector, face, colour_face):
    for image in (face, colour_face):
        score = detector.score(image)
        assert np.isfinite(score) and score > NO_FACE_SCORE
        assert detector.has_face(image)
    blank = np.zeros_like(face)
    assert detector.score(blank) == NO_FACE_SCORE and not detector.has_face(blank)
    scores = detector.scores([blank, face], progress=False)
    assert np.argmax(scores) == 1 and scores[1] > scores[0]


def test_greyscale_forms_agree(detector, face):
    grey = face[..., 0]
    assert (face[..., 0] == face[..., 2]).all()
    rgba = np.dstack([face, np.random.default_rng(0).integers(0, 256, face.shape[:2], dtype=np.uint8)])
    forms = [face, grey, grey[..., None], rgba, torch.tensor(grey)[None], torch.tensor(face).permute(2, 0, 1)]
    for form in forms:
        assert np.array_equal(grey_uint8(form), grey)
    scores = {detector.score(form) for form in forms}
    assert len(scores) == 1 and scores.pop() > NO_FACE_SCORE


def test_colour_forms_and_torch_batches_agree(detector, colour_face, face):
    rgba = np.dstack([colour_face, np.full(colour_face.shape[:2], 255, np.uint8)])
    expected = detector.score(colour_face)
    assert detector.score(rgba) == expected
    assert detector.score(torch.tensor(colour_face).permute(2, 0, 1)) == expected
    batch = torch.tensor(np.stack([colour_face, np.zeros_like(colour_face)])).permute(0, 3, 1, 2)
    assert np.array_equal(detector.scores(batch, progress=False), [expected, NO_FACE_SCORE])
    nhwc = np.stack([face, face])
    assert np.array_equal(detector.scores(nhwc, progress=False), [detector.score(face)] * 2)


@pytest.mark.parametrize("bad", [
    np.zeros((64, 64, 3), np.float32),  # generator output before to_uint8
    np.zeros((64, 64), np.int16),
    np.zeros((64, 64, 2), np.uint8),  # 2 channels
    np.zeros((64, 64, 3, 1), np.uint8),  # 4-D is a batch, not an image
    np.zeros((0, 64, 3), np.uint8),  # empty
    np.zeros((64,), np.uint8),
    torch.zeros(64, 64, 3, dtype=torch.uint8),  # torch tensors are channels-first
    [[0, 1], [2, 3]],  # not an array
])
def test_bad_images_raise_a_user_error(detector, bad):
    with pytest.raises(FidlensError):
        detector.score(bad)


def test_bad_batches_raise_a_user_error(detector):
    with pytest.raises(FidlensError, match="NCHW"):
        detector.scores(torch.zeros(3, 64, 64, dtype=torch.uint8), progress=False)
    with pytest.raises(FidlensError, match="uint8"):
        detector.scores(torch.zeros(2, 3, 64, 64), progress=False)
    assert detector.scores([], progress=False).shape == (0,)


def test_presence_rate_and_flags():
    assert face_presence_rate([True, False, True, True]) == 0.75
    assert face_presence_rate(np.array([1, 0])) == 0.5
    assert np.array_equal(face_flags([2.5, NO_FACE_SCORE, -0.3]), [True, False, True])
    with pytest.raises(FidlensError, match="undefined"):
        face_presence_rate([])
    with pytest.raises(FidlensError, match="booleans"):
        face_presence_rate([0.5, 2.0])


def test_settings_are_used_and_validated(face):
    assert FaceDetector(FaceDetectorSettings(min_neighbors=500)).score(face) == NO_FACE_SCORE
    assert FaceDetector(FaceDetectorSettings(min_face=1.0, padding=0.0)).score(face) == NO_FACE_SCORE
    with pytest.raises(dataclasses.FrozenInstanceError):
        FaceDetectorSettings().min_neighbors = 1  # type: ignore[misc]
    for bad in ({"padding": 2.0}, {"scale_factor": 1.0}, {"min_face": -0.1}, {"working_size": 8},
                {"min_neighbors": -1}):
        with pytest.raises(FidlensError):
            FaceDetectorSettings(**bad)
    with pytest.raises(FidlensError, match="not found"):
        FaceDetector(FaceDetectorSettings(cascade="no_such_cascade.xml"))


def test_prepared_image_has_the_working_size_and_border():
    detector = FaceDetector(FaceDetectorSettings(working_size=128, padding=0.25))
    assert detector.prepare(np.zeros((64, 96), np.uint8)).shape == (128 + 64, 192 + 64)
    assert detector.prepare(np.zeros((1024, 1024, 3), np.uint8)).shape == (192, 192)


def test_describe_names_the_detector_and_every_setting(detector):
    text = detector.describe()
    assert "\n" not in text
    for part in ("Haar cascade haarcascade_frontalface_default.xml", "256 px", "20% replicated border",
                 "scaleFactor 1.1", "minNeighbors 5", "min face 30%", "OpenCV 4."):
        assert part in text


def test_cli_face_rate_prints_rate_counts_and_detector(capsys):
    assert main(["face-rate", str(SG3_SAMPLES), "--max-images", "4", "--quiet"]) == 0
    out = capsys.readouterr().out
    match = re.search(r"face presence rate: (\d\.\d{4}) \((\d+) of 4 images\)", out)
    assert match and float(match.group(1)) == int(match.group(2)) / 4
    assert "detector: OpenCV" in out


def test_cli_face_rate_reports_a_missing_path_as_one_line(tmp_path, capsys):
    assert main(["face-rate", str(tmp_path / "missing")]) == 2
    err = capsys.readouterr().err
    assert err.startswith("error:") and len(err.strip().splitlines()) == 1
