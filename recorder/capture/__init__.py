"""Capture: the forwarding proxy, the capture thread, every way krec starts or wraps a kernel."""
