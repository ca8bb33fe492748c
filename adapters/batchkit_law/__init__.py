"""batchkit_law: law remote workflows whose jobs run through batchkit (placeholder)."""
