"""`make bench`: every benchmark, each printing its own figures and ratios."""

from benchmarks import app_import, graph_inventory, offline_audit, reach

if __name__ == "__main__":
    graph_inventory.main([])
    app_import.main([])
    reach.main([])
    offline_audit.main([])
