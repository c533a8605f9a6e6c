"""Credential posture: what every workload identity holds, uses and should lose."""
