"""The tasks view: the task table and the panel for one task, with its spec editor, live
instance controls and level meters.
"""
