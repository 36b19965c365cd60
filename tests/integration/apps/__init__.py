"""Small Faust apps the integration tests run as worker processes."""
