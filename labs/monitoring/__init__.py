"""Lab ``monitoring``: serve the champion with Prometheus metrics, log every prediction, watch
quality and drift day by day, alert (``make lab-monitoring``)."""
