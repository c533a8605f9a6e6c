"""Suppressions as code: YAML files saying what is known-good, why, who says so and until when."""
