"""Everything the GUI asks of the engine, and the only package of tdn_gui that imports it.

- scheduler/: the inference thread and the stream lane, without Qt (mailbox, models, jobs,
  thread policy); see its usage guide.
- qt_worker.InferenceWorker: the scheduler as a QObject whose reports are Qt signals; the views
  hold one and submit frames, load models and start jobs through it.
- qt_decoder.Decoder: image files decoded on a small pool of its own (never behind inference).
- qt_download.DownloadThread: a registry model's weights fetched on a thread of its own.
- engine_api: the constants, types and quick look-ups the views use directly.

This module imports nothing itself, so that the scheduler and engine_api load without Qt.
"""
