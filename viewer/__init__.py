"""krec.viewer: the Textual terminal UI for .krec logs (``krec view``)."""
