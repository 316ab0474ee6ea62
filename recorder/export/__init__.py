"""Exports: a log as JSON lines, a notebook, a pytest test, or OpenTelemetry spans."""
