"""The window around the views: the main window, its empty-state help, the hub chooser and the
notification area.
"""
