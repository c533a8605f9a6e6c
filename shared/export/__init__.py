"""Findings and their changes into Log Analytics (the WorkloadIdentityFindings_CL table)."""
