"""The detection catalog: one YAML file per detection, validated on load."""
