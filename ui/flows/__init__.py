"""The flows view: flow runs on the nodes, their events and locks, and the form that fills in a
flow's inputs from its schema.
"""
