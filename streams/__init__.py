"""The streams app (its issue has not come yet: no models or views so far)."""
