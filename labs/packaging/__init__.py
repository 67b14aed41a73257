"""Lab packaging: the same trained churn pipeline as pickle, skops, ONNX, an MLflow model, a
REST service, a serverless handler and a container — measured side by side."""
