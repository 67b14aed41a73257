"""Lab testing: the six kinds of tests a model needs before production, each shown catching a
planted defect that the correct candidate does not have."""
