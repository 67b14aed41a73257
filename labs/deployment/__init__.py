"""Lab deployment: canary with automated analysis, blue-green switch and shadow traffic through
a real proxy (Envoy)."""
