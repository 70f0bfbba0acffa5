"""MLflow: the store and its retry policy, run logging, the pyfunc model, versions and promotion."""
