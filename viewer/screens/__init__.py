"""The viewer's screens: the message list, threads, timeline, keys help and replay."""
