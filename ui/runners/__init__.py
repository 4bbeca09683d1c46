"""The runners view: the runners enrolled at the hub, their logs, the jobs they run, and the
dialogs that add a runner or submit a job.
"""
