"""The good/bad pairs study (METHODS §4): pairs files, w-space selection and replacement,
Table 2, pair attention maps and the face-presence rate beside FID."""
