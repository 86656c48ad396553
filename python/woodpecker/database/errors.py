"""The errors the tuning database raises: one line naming the storage, what is wrong and the fix."""

from __future__ import annotations

from woodpecker.errors import WoodpeckerError


class DatabaseError(WoodpeckerError):
    """The tuning database cannot be opened, read or written (one-line message with the fix)."""


class ClaimLostError(DatabaseError):
    """A claim's trial is gone (its lease expired and another worker took the configuration, or an
    import finished it) and its result could not be recorded as a new trial."""
