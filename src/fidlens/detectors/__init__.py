"""Feature extractors behind one protocol (`base`) and a registry by name (`registry`)."""
