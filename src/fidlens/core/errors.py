"""One exception type for problems the user can fix, so the CLI can print them as one line."""


class FidlensError(Exception):
    """A user-facing error: bad input, a missing asset, an impossible request."""


class DatasetError(FidlensError):
    """An image source is missing, empty, corrupt or not an image set."""


class AssetError(FidlensError):
    """A model weight file or dataset is missing or fails its checksum."""


class StatisticsError(FidlensError):
    """Features or statistics that cannot give a meaningful distance (NaN, wrong shape)."""
