"""Resampling a candidate pool so its weighted statistics minimise FID (Kynkäänniemi et al., 2023)."""
