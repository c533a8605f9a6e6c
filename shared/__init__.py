"""Workload Identity Auditor: the audit engine behind function_app.py and the `wiaudit` CLI."""
