"""The automatic pairs rule says when the face score could not rank the bad seeds it took."""

from __future__ import annotations

import numpy as np

from fidlens.studies.pairs.auto import _tie_note


def test_ties_at_the_cut_are_reported_with_how_they_were_broken():
    scores = np.array([3.0, -np.inf, 1.0, -np.inf, -np.inf, 2.0])
    chosen = np.argsort(scores, kind="stable")[:2]
    note = _tie_note(scores, chosen)
    assert "3 seeds tie at score no face" in note and "2 of them" in note and "lowest seed numbers" in note


def test_no_note_when_the_score_separates_the_chosen_seeds():
    scores = np.array([3.0, -np.inf, 1.0, 0.5, 2.0])
    chosen = np.argsort(scores, kind="stable")[:2]
    assert _tie_note(scores, chosen) == ""
