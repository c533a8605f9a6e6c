"""`wiaudit hunt`: run any KQL, a .kql file, Sentinel rule or hunting-query YAML, or a folder of them."""
