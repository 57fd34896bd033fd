"""The manager: ECMs, labels, health, resources, authentication and the Linkis API plumbing."""
