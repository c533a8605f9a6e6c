"""The web pages served beside the findings API (see pages.py)."""
