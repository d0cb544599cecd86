"""The HTTP ingress: the Connector API that partners call."""
