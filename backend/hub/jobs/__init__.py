"""Runner jobs on the hub: the job fold, placement and reports, runners, and routes."""

from backend.hub.jobs.service import JobError, JobService
from backend.hub.jobs.state import Job, JobState

__all__ = ["Job", "JobError", "JobService", "JobState"]
