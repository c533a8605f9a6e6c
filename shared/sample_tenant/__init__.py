"""A deterministic sample tenant: a directory snapshot, logs of every table, and labelled attack stories."""
