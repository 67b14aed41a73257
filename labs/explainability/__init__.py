"""Lab ``explainability``: SHAP, permutation and impurity importance checked against the truth
the data generator planted — additivity, the strongest driver first, a noise feature, a leak,
explanations versioned with the model, and a bias gap explained.
"""
