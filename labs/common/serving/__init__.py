"""The project's serving app, shared by every lab that serves a model (monitoring, testing,
packaging, scaling, deployment, availability, security): ``create_app`` (FastAPI, Prometheus
metrics, prediction log) and ``serve_in_background`` (a managed server process)."""
