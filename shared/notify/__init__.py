"""Daily digests of new findings: the Notifier port and its Teams, email and outbox adapters."""
