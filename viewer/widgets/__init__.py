"""The viewer's widgets: virtual row lists, the detail pane and the input bars."""
