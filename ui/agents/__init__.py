"""The agents view: the processes this desktop spawned and supervises, with the dialogs that
spawn engine drivers and runners.
"""
