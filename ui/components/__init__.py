"""The components view: the tree of components with their health, the details pane for the
selected one, and the hub's event log.
"""
