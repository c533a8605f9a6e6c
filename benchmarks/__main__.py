"""`make bench`: every benchmark, each printing its own figures and ratios."""

from benchmarks import graph_inventory

if __name__ == "__main__":
    graph_inventory.main([])
