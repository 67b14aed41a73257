"""Lab availability: replicas behind Envoy with health checks and retries; kill, hang and
drain a replica under load and count what the clients lost."""
