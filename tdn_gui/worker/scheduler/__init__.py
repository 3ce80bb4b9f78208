"""The scheduler: the threads that run the engine for the GUI, without Qt (plain threads and one
threading.Condition), so that it can be tested with plain threads.

    scheduler = Scheduler(Reports(result_ready=..., model_loaded=..., superseded=...), resize="min")
    scheduler.start()
    scheduler.load_model(cfg, weights, names)        # -> model_loaded(LoadedModel) or model_failed(str)
    scheduler.submit(tag, rgb)                       # -> result_ready(Result(tag, top, ...)), or
    scheduler.submit(tag2, rgb2, stream=True)        #    superseded(tag) when a newer request replaced it
    scheduler.set_resize("letterbox", stream=True)   # the stream frames' resize mode from now on
    job = scheduler.start_job(TeachRequest(folder))  # -> job_progress(JobProgress)..., job_finished(JobDone)
    job.cancel()
    scheduler.set_taught(result.model)               # -> classifier_changed(LoadedModel)
    scheduler.counts(), scheduler.lanes, scheduler.busy
    scheduler.stop()                                 # joins every thread it started

Reports are plain callbacks, called on the scheduler's threads (tdn_gui.worker.qt_worker turns
them into Qt signals).

Modules, one concept each: mailbox (the pending request, sequence numbers, abandoning stale
stream frames), models (the loaded and the live model, answering a request), jobs (the long
requests), threads (the thread policy: every core, half each for two lanes, when a second lane
may run), scheduler (the inference thread, the stream lane, the order of the work).
"""

from .jobs import ClassifyFolderRequest, ExportRequest, Job, JobDone, JobProgress, TeachRequest, WriteCsvRequest
from .mailbox import Counts, Request, Result
from .models import TOP_K, LoadedModel
from .scheduler import Reports, Scheduler

__all__ = [
    "Scheduler",
    "Reports",
    "Request",
    "Result",
    "Counts",
    "LoadedModel",
    "TOP_K",
    "Job",
    "JobProgress",
    "JobDone",
    "TeachRequest",
    "ExportRequest",
    "ClassifyFolderRequest",
    "WriteCsvRequest",
]
