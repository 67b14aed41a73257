"""Lab ``security``: untrusted model files, pseudonymised personal data, encryption at rest and
in transit, scoped API keys, a hash-chained audit log and hash-locked installs — each shown
against a measured attack.
"""
