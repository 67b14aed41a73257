"""Lab scaling: batching, micro-batching, workers, autoscaling, smaller models, edge vs cloud."""
