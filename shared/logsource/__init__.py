"""Where detections read logs from: the LogSource port and its adapters."""
