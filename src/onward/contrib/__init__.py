"""Integrations with other frameworks. Each is imported only by the projects that use it."""
