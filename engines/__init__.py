"""Engines: their registry, lifecycle services, endpoints, tasks, the ECM agent and the runtime."""
