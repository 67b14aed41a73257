"""Lab ``features``: feature engineering inside the model pipeline — training–serving skew
measured and removed, and point-in-time correct features from an event log.
"""
