"""Kusto query validation with Microsoft's parser (npm @kusto/language-service-next)."""
