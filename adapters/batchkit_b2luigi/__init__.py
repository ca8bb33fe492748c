"""batchkit_b2luigi: a b2luigi batch system backed by batchkit (placeholder)."""
