"""The audit run: plan -> detect -> inventory -> enrich -> persist -> notify."""
