"""Lab ``cicd``: CI/CD for a model — a workflow triggered by code and data, a model gate that
stops a worse model, staging with lineage, and an audited, approved step to production.
"""
