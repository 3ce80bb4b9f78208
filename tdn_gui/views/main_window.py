"""The main window: menus, the model, and the three views sharing one inference worker."""

from __future__ import annotations

import itertools
from pathlib import Path

from PySide6.QtCore import Qt
from PySide6.QtGui import QAction, QActionGroup, QGuiApplication, QKeySequence
from PySide6.QtWidgets import (
    QFileDialog,
    QLabel,
    QMainWindow,
    QMessageBox,
    QProgressDialog,
    QTabWidget,
    QVBoxLayout,
    QWidget,
)

from ..settings import ModelChoice, Settings
from ..teach.view import TeachView
from ..worker.engine_api import (
    MODELS,
    RESIZE_HELP,
    RESIZE_MODES,
    cfg_dir,
    cfg_path,
    expected_weights_bytes,
    find_labels,
    find_names,
    is_downloaded,
    weights_path,
)
from ..worker.qt_download import DownloadThread
from ..worker.qt_worker import InferenceWorker
from ..worker.scheduler import LoadedModel
from .classify_folder import ClassifyFolderDialog
from .help_menu import add_help_menu
from .image_view import ImageView, image_files_filter
from .kernel_status import KernelStatusLabel
from .model_panel import ModelPanel, model_details, model_summary
from .webcam_view import WebcamView

MENU_MODELS = ("tiny", "darknet")


class MainWindow(QMainWindow):
    def __init__(
        self,
        settings: Settings | None = None,
        make_classifier=None,
        resize: str | None = None,
        webcam_resize: str | None = None,
    ):
        super().__init__()
        self.setWindowTitle("tdn — Tiny Darknet classifier")
        self.setAcceptDrops(True)
        self.settings = settings or Settings()
        self.resize_mode = resize or self.settings.resize(RESIZE_MODES)
        self.webcam_resize_mode = webcam_resize or self.settings.webcam_resize(RESIZE_MODES)
        self.worker = InferenceWorker(make_classifier, self.resize_mode, self.webcam_resize_mode)
        self.worker.model_loaded.connect(self._on_model_loaded)
        self.worker.model_failed.connect(self._on_model_failed)
        self.worker.classifier_changed.connect(self._on_classifier_changed)
        self.model_info: LoadedModel | None = None
        self.live_info: LoadedModel | None = None  # what classifies now: the loaded model or a taught one
        self.classify_dialog: ClassifyFolderDialog | None = None
        self._download: DownloadThread | None = None
        self._pasted = itertools.count(1)

        self.image_view = ImageView(self.worker)
        self.webcam_view = WebcamView(self.worker)
        self.webcam_view.source_changed.connect(self.settings.set_camera)
        self.webcam_view.set_smoothing(self.settings.smoothing())
        self.webcam_view.smoothing_changed.connect(self.settings.set_smoothing)
        self.tabs = QTabWidget()
        self.tabs.addTab(self.image_view, "Images")
        self.tabs.addTab(self.webcam_view, "Webcam")
        self.teach_view = TeachView(self.worker, self.webcam_view, self.settings)
        self.teach_view.training.exported.connect(self._on_exported)
        self.teach_view.training.base_model_requested.connect(lambda key: self.choose_model(ModelChoice(key=key)))
        self.teach_view.project_changed.connect(self.settings.set_teach_project)
        self.tabs.addTab(self.teach_view, "Teach")
        self.panel = ModelPanel()
        self.panel.hide()
        self.panel.download_requested.connect(self.download_model)
        self.panel.open_requested.connect(self.open_model_files)
        central = QWidget()
        layout = QVBoxLayout(central)
        layout.setContentsMargins(6, 6, 6, 0)
        layout.addWidget(self.panel)
        layout.addWidget(self.tabs, 1)
        self.setCentralWidget(central)
        self.kernel_label = KernelStatusLabel()
        self.kernel_label.announced.connect(lambda text: self.statusBar().showMessage(text, 8000))
        self.worker.kernels_changed.connect(self.kernel_label.set_status)
        self.worker.result_ready.connect(self._on_result_timing)
        self.statusBar().addPermanentWidget(self.kernel_label)
        self.model_label = QLabel("No model")
        self.statusBar().addPermanentWidget(self.model_label)
        self._build_menus()
        if self.settings.geometry() is not None:
            self.restoreGeometry(self.settings.geometry())
        else:
            self.resize(1100, 720)
        self.teach_view.restore(self.settings.teach_project())
        self.worker.start()

    # ---- menus ---------------------------------------------------------------------------------
    def _build_menus(self) -> None:
        file_menu = self.menuBar().addMenu("&File")
        self._add_action(file_menu, "&Open images…", self.open_images, QKeySequence.StandardKey.Open)
        self._add_action(file_menu, "Open &folder…", self.open_folder)
        self._add_action(file_menu, "&Paste", self.paste, QKeySequence.StandardKey.Paste)
        self._add_action(file_menu, "&Clear images", self.image_view.clear)
        file_menu.addSeparator()
        self.classify_folder_action = self._add_action(
            file_menu, "Classify fol&der…", lambda: self.classify_folder(), QKeySequence("Ctrl+Shift+O")
        )
        file_menu.addSeparator()
        self._add_action(file_menu, "&Quit", self.close, QKeySequence.StandardKey.Quit)

        model_menu = self.menuBar().addMenu("&Model")
        self.model_actions: dict[str, QAction] = {}
        self._model_group = group = QActionGroup(self)
        for key in MENU_MODELS:
            action = self._add_action(
                model_menu, MODELS[key].title, lambda _=False, k=key: self.choose_model(ModelChoice(key=k))
            )
            action.setCheckable(True)
            group.addAction(action)
            self.model_actions[key] = action
        self._model_menu = model_menu
        self._taught_separator = model_menu.addSeparator()
        self.taught_actions: dict[str, QAction] = {}  # by cfg path: models exported from Teach
        for choice in self.settings.taught_models():
            if Path(choice.cfg).is_file():
                self._add_taught_action(choice)
        model_menu.addSeparator()
        self.open_model_action = self._add_action(model_menu, "Open cfg + weights…", self.open_model_files)

        resize_menu = self.menuBar().addMenu("&Resize")
        resize_menu.setToolTipsVisible(True)
        resize_menu.addSection("Images")
        self.resize_actions = self._add_mode_group(resize_menu, self.resize_mode, self.set_resize)
        self.tta_action = self._add_tta_action(resize_menu, stream=False)
        resize_menu.addSection("Webcam")
        self.webcam_resize_actions = self._add_mode_group(resize_menu, self.webcam_resize_mode, self.set_webcam_resize)
        self.webcam_tta_action = self._add_tta_action(resize_menu, stream=True)

        add_help_menu(self)

    def _add_tta_action(self, menu, stream: bool) -> QAction:
        """Resize ▸ Test-time augmentation, for images or (stream) the webcam, as last chosen."""
        action = self._add_action(menu, "Test-time augmentation", lambda on: self.set_tta(on, stream))
        action.setCheckable(True)
        action.setToolTip(
            "Also classify the mirror image and the image at 8/7 of the network's size, and "
            "average: better answers (Tiny on real photos: top-1 60 → 65 %, top-5 84 → 90 %) for "
            "~2.2x the work. The mirror alone for networks of a fixed input size."
        )
        on = self.settings.tta(stream)
        action.setChecked(on)
        if on:
            self.worker.set_tta(True, stream)
        return action

    def _add_mode_group(self, menu, current: str, choose) -> dict[str, QAction]:
        """One checkable action per resize mode, exclusive, `current` checked."""
        actions: dict[str, QAction] = {}
        group = QActionGroup(self)
        for mode in RESIZE_MODES:
            action = self._add_action(menu, mode, lambda _=False, m=mode: choose(m))
            action.setCheckable(True)
            action.setChecked(mode == current)
            action.setToolTip(RESIZE_HELP)
            group.addAction(action)
            actions[mode] = action
        return actions

    def _add_taught_action(self, choice: ModelChoice) -> QAction:
        """A Model menu entry for a model exported from the Teach view (placed after the built-in ones)."""
        action = self.taught_actions.get(choice.cfg)
        if action is None:
            action = QAction(self)
            action.setCheckable(True)
            action.triggered.connect(lambda _=False, c=choice: self.choose_model(c))
            self._model_group.addAction(action)
            self._model_menu.insertAction(self._taught_separator, action)
            self.taught_actions[choice.cfg] = action
        action.setText(f"{Path(choice.cfg).stem} (taught)")
        action.setToolTip(choice.cfg)
        return action

    def _on_exported(self, paths) -> None:
        choice = ModelChoice(cfg=str(paths.cfg), weights=str(paths.weights), names=str(paths.names))
        self.settings.add_taught_model(choice)
        self._add_taught_action(choice)

    def _add_action(self, menu, text, slot, shortcut=None) -> QAction:
        action = QAction(text, self)
        if shortcut is not None:
            action.setShortcut(shortcut)
        action.triggered.connect(slot)
        menu.addAction(action)
        return action

    # ---- images in -----------------------------------------------------------------------------
    def add_paths(self, paths) -> int:
        self.tabs.setCurrentWidget(self.image_view)
        added = self.image_view.add_paths(paths)
        if not added:
            self.statusBar().showMessage("No images found there.", 5000)
        return added

    def open_images(self) -> None:
        files, _ = QFileDialog.getOpenFileNames(self, "Open images", "", image_files_filter())
        if files:
            self.add_paths(files)

    def open_folder(self) -> None:
        folder = QFileDialog.getExistingDirectory(self, "Open a folder of images")
        if folder:
            self.add_paths([folder])

    def _take_mime(self, mime) -> bool:
        """Files (URLs) or image data from a drop or the clipboard; False if there was neither."""
        local = [u.toLocalFile() for u in mime.urls() if u.isLocalFile()] if mime.hasUrls() else []
        if local:
            self.add_paths(local)
            return True
        if mime.hasImage():
            image = mime.imageData()
            if image is not None and not image.isNull():
                self.tabs.setCurrentWidget(self.image_view)
                self.image_view.add_qimage(image, f"Pasted image {next(self._pasted)}")
                return True
        return False

    def paste(self) -> None:
        if not self._take_mime(QGuiApplication.clipboard().mimeData()):
            self.statusBar().showMessage("The clipboard holds no image and no image files.", 5000)

    def dragEnterEvent(self, event) -> None:
        mime = event.mimeData()
        if (mime.hasUrls() and any(u.isLocalFile() for u in mime.urls())) or mime.hasImage():
            event.acceptProposedAction()

    def dropEvent(self, event) -> None:
        if self._take_mime(event.mimeData()):
            event.acceptProposedAction()

    # ---- the model -----------------------------------------------------------------------------
    def choose_model(self, choice: ModelChoice) -> None:
        """Load a registry model or a cfg + weights pair on the worker; explain what is missing."""
        self._set_model_ready(False)
        if choice.key is not None:
            info = MODELS[choice.key]
            self.model_actions.get(choice.key, self.open_model_action).setChecked(True)
            if not is_downloaded(choice.key):
                self._show_missing(choice.key)
                return
            names = choice.names or find_names()
            cfg, weights = cfg_path(choice.key), weights_path(choice.key)
            title = info.title
        else:
            for action in self.model_actions.values():
                action.setChecked(False)
            cfg, weights, names = choice.cfg, choice.weights, choice.names
            if cfg in self.taught_actions:
                self.taught_actions[cfg].setChecked(True)
            missing = [p for p in (cfg, weights, names) if p and not Path(p).is_file()]
            if missing:
                self.panel.show_problem(
                    "Model files not found", "Missing: " + ", ".join(missing) + ". Use Model ▸ Open cfg + weights…"
                )
                return
            title = Path(cfg).stem
        self.model_label.setText(f"Loading {title}…")
        self.worker.load_model(cfg, weights, names, key=choice.key)

    def _show_missing(self, key: str) -> None:
        self.teach_view.training.refresh_base_models(loaded=False)
        info = MODELS[key]
        size_mb = expected_weights_bytes(key) / 1e6
        self.model_label.setText("No model")
        self.panel.show_problem(
            f"{info.title} weights are not on this computer",
            f"tdn needs {weights_path(key)} (about {size_mb:.0f} MB). Download it, or pick a "
            "darknet .cfg and .weights of your own. Images and the camera will be classified as soon "
            "as a model is loaded.",
            download_key=key,
            download_label=f"Download {info.title} ({size_mb:.0f} MB)",
        )

    def open_model_files(self) -> None:
        cfg, _ = QFileDialog.getOpenFileName(
            self, "Open a darknet cfg", str(cfg_dir()), "Darknet cfg (*.cfg);;All files (*)"
        )
        if not cfg:
            return
        weights, _ = QFileDialog.getOpenFileName(
            self, f"Weights for {Path(cfg).name}", str(Path(cfg).parent), "Darknet weights (*.weights);;All files (*)"
        )
        if weights:
            names = find_names()
            self.choose_model(ModelChoice(cfg=cfg, weights=weights, names=str(names) if names else None))

    def _on_model_loaded(self, info: LoadedModel) -> None:
        self.model_info = self.live_info = info
        self.panel.hide()
        self._show_model(info)
        self.statusBar().showMessage(f"Loaded {info.name} in {info.load_seconds:.1f} s", 5000)
        self.settings.set_model(
            ModelChoice(key=info.key) if info.key else ModelChoice(cfg=info.cfg, weights=info.weights, names=info.names)
        )
        self.teach_view.set_base_model(info)
        self._set_model_ready(True)

    def _on_classifier_changed(self, info: LoadedModel) -> None:
        """The live classifier switched between the loaded model and a taught one."""
        self.live_info = info
        self._show_model(info)
        self.statusBar().showMessage(
            "Classifying with the taught classes" if info.taught else f"Classifying with {info.name} again", 5000
        )
        self.image_view.reclassify()

    def _show_model(self, info: LoadedModel) -> None:
        self.model_label.setText(model_summary(info))
        self.model_label.setToolTip(model_details(info))

    def _on_result_timing(self, result) -> None:
        if result.error is None:
            self.kernel_label.add_timing(result.seconds)

    def _on_model_failed(self, message: str) -> None:
        self.model_info = self.live_info = None
        self.teach_view.training.refresh_base_models(loaded=False)
        self.model_label.setText("No model")
        self.model_label.setToolTip("")
        self.panel.show_problem(
            "The model could not be loaded",
            message + "\nChoose another one in the Model menu, or open a cfg + weights pair.",
        )

    def _set_model_ready(self, ready: bool) -> None:
        self.image_view.set_model_ready(ready)
        self.webcam_view.set_model_ready(ready)
        self.teach_view.set_model_ready(ready)

    # ---- classify a folder ---------------------------------------------------------------------
    def classify_folder(self, folder: str | None = None) -> ClassifyFolderDialog | None:
        """`tdn valid` on a folder with the live classifier, in a dialog with progress and Cancel."""
        if self.model_info is None:
            QMessageBox.information(self, "Classify folder", "Load a model first (Model menu).")
            return None
        if self.worker.busy:
            QMessageBox.information(
                self, "Classify folder", "The model is busy (training or exporting): try again when it has finished."
            )
            return None
        if folder is None:
            folder = QFileDialog.getExistingDirectory(self, "Classify every image in a folder")
            if not folder:
                return None
        labels = find_labels()
        model_name = "the taught classes" if self.live_info.taught else self.live_info.name
        self.classify_dialog = ClassifyFolderDialog(
            self.worker, folder, str(labels) if labels else None, model_name, self
        )
        self.classify_dialog.open()
        return self.classify_dialog

    def set_resize(self, mode: str) -> None:
        self.resize_mode = mode
        self.resize_actions[mode].setChecked(True)
        self.settings.set_resize(mode)
        self.worker.set_resize(mode)
        self.image_view.reclassify()

    def set_tta(self, on: bool, stream: bool = False) -> None:
        """Test-time augmentation on or off for images (which are classified again) or the webcam."""
        (self.webcam_tta_action if stream else self.tta_action).setChecked(on)
        self.settings.set_tta(on, stream)
        self.worker.set_tta(on, stream)
        if not stream:
            self.image_view.reclassify()

    def set_webcam_resize(self, mode: str) -> None:
        self.webcam_resize_mode = mode
        self.webcam_resize_actions[mode].setChecked(True)
        self.settings.set_webcam_resize(mode)
        self.worker.set_resize(mode, stream=True)

    # ---- download ------------------------------------------------------------------------------
    def download_model(self, key: str) -> None:
        if self._download is not None:
            return
        self.panel.download_button.setEnabled(False)
        thread = self._download = DownloadThread(key)
        dialog = QProgressDialog(f"Downloading {MODELS[key].title}…", "Cancel", 0, 0, self)
        dialog.setWindowModality(Qt.WindowModality.WindowModal)
        dialog.setMinimumDuration(0)
        dialog.canceled.connect(thread.cancel.set)
        thread.progressed.connect(lambda done, total: _show_progress(dialog, done, total))
        thread.succeeded.connect(lambda _path: self.choose_model(ModelChoice(key=key)))
        thread.failed.connect(self._on_download_failed)
        thread.finished.connect(dialog.reset)
        thread.finished.connect(dialog.deleteLater)
        thread.finished.connect(self._on_download_finished)
        thread.start()

    def _on_download_failed(self, message: str) -> None:
        self.panel.download_button.setEnabled(True)
        if message != "cancelled":
            QMessageBox.warning(self, "Download failed", message)

    def _on_download_finished(self) -> None:
        # `finished` comes from the thread just before it ends: join it before letting go of it.
        self._download.wait()
        self._download = None

    # ---- lifetime ------------------------------------------------------------------------------
    _shut_down = False

    def shutdown(self) -> None:
        """Save the settings and end every thread the window started, in order; once.

        Every way out comes here: closing the window (closeEvent), and QApplication.aboutToQuit,
        which main() connects: app.quit() or app.exit(), a signal from the terminal, the display
        going away.
        """
        if self._shut_down:
            return
        self._shut_down = True
        # First, so that a thread slow to end cannot cost the window's place on screen.
        self.settings.set_geometry(self.saveGeometry())
        self.settings.sync()
        # What feeds the worker first (the camera is released here), then the worker itself.
        self.webcam_view.shutdown()
        self.image_view.shutdown()
        self.teach_view.shutdown()
        if self._download is not None:
            self._download.cancel.set()
            self._download.wait()
        self.worker.stop()
        self.settings.sync()  # anything the views recorded while stopping

    def closeEvent(self, event) -> None:
        self.shutdown()
        super().closeEvent(event)


def _show_progress(dialog: QProgressDialog, done: int, total: int | None) -> None:
    # QProgressDialog counts in int: report kilobytes so that big files fit.
    if total:
        dialog.setMaximum(max(1, total // 1024))
    dialog.setValue(min(done // 1024, dialog.maximum()) if total else 0)
