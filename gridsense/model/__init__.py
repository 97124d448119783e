"""The domain vocabulary every stage shares: envelopes, registries, the category table, cases."""
