"""What the app remembers between runs, in one QSettings store (organisation "tdn", app "tdn-gui").

The store is always an INI file in the user scope, so tests can redirect it with
QSettings.setPath(IniFormat, UserScope, tmp) and never touch the user's settings.
"""

from __future__ import annotations

from dataclasses import dataclass

from PySide6.QtCore import QByteArray, QSettings

ORGANISATION = "tdn"
APPLICATION = "tdn-gui"
DEFAULT_MODEL_KEY = "tiny"
DEFAULT_RESIZE = "min"
DEFAULT_WEBCAM_RESIZE = "letterbox"  # darknet's webcam demo: one input size for every frame
DEFAULT_SMOOTHING = "light"  # the webcam bars' (views/smoothing.py levels)


@dataclass(frozen=True)
class ModelChoice:
    """A registry model (key) or a cfg + weights pair chosen by hand."""

    key: str | None = None
    cfg: str | None = None
    weights: str | None = None
    names: str | None = None


class Settings:
    def __init__(self):
        self._store = QSettings(QSettings.Format.IniFormat, QSettings.Scope.UserScope, ORGANISATION, APPLICATION)

    def file_name(self) -> str:
        return self._store.fileName()

    def sync(self) -> None:
        self._store.sync()

    # geometry -----------------------------------------------------------------------------------
    def geometry(self) -> QByteArray | None:
        value = self._store.value("window/geometry")
        return value if isinstance(value, QByteArray) and not value.isEmpty() else None

    def set_geometry(self, value: QByteArray) -> None:
        self._store.setValue("window/geometry", value)

    # model --------------------------------------------------------------------------------------
    def model(self) -> ModelChoice:
        s = self._store
        cfg, weights = s.value("model/cfg", "", str), s.value("model/weights", "", str)
        names = s.value("model/names", "", str) or None
        if cfg and weights:
            return ModelChoice(cfg=cfg, weights=weights, names=names)
        return ModelChoice(key=s.value("model/key", DEFAULT_MODEL_KEY, str) or DEFAULT_MODEL_KEY)

    def set_model(self, choice: ModelChoice) -> None:
        s = self._store
        s.setValue("model/key", choice.key or "")
        s.setValue("model/cfg", "" if choice.key else (choice.cfg or ""))
        s.setValue("model/weights", "" if choice.key else (choice.weights or ""))
        s.setValue("model/names", "" if choice.key else (choice.names or ""))

    # camera and resize --------------------------------------------------------------------------
    def camera(self) -> str:
        return self._store.value("camera/source", "0", str)

    def set_camera(self, source: str) -> None:
        self._store.setValue("camera/source", source)

    def resize(self, modes) -> str:
        mode = self._store.value("model/resize", DEFAULT_RESIZE, str)
        return mode if mode in modes else DEFAULT_RESIZE

    def set_resize(self, mode: str) -> None:
        self._store.setValue("model/resize", mode)

    def webcam_resize(self, modes) -> str:
        mode = self._store.value("camera/resize", DEFAULT_WEBCAM_RESIZE, str)
        return mode if mode in modes else DEFAULT_WEBCAM_RESIZE

    def set_webcam_resize(self, mode: str) -> None:
        self._store.setValue("camera/resize", mode)

    def tta(self, stream: bool = False) -> bool:
        """Test-time augmentation on for images, or (stream) for the webcam."""
        return self._store.value("camera/tta" if stream else "model/tta", False, bool)

    def set_tta(self, on: bool, stream: bool = False) -> None:
        self._store.setValue("camera/tta" if stream else "model/tta", bool(on))

    def smoothing(self) -> str:
        """The webcam bars' smoothing level as stored; the view ignores a level it does not know."""
        return self._store.value("camera/smoothing", DEFAULT_SMOOTHING, str)

    def set_smoothing(self, level: str) -> None:
        self._store.setValue("camera/smoothing", level)

    # teaching -----------------------------------------------------------------------------------
    def teach_project(self) -> str:
        """The Teach view's last project folder ("" for none)."""
        return self._store.value("teach/project", "", str)

    def set_teach_project(self, folder: str) -> None:
        self._store.setValue("teach/project", folder)

    def export_folder(self) -> str:
        return self._store.value("teach/export_folder", "", str)

    def set_export_folder(self, folder: str) -> None:
        self._store.setValue("teach/export_folder", folder)

    def taught_models(self) -> list[ModelChoice]:
        """Models exported from the Teach view, oldest first, for the Model menu."""
        s = self._store
        models = []
        for i in range(s.beginReadArray("taught")):
            s.setArrayIndex(i)
            cfg, weights = s.value("cfg", "", str), s.value("weights", "", str)
            if cfg and weights:
                models.append(ModelChoice(cfg=cfg, weights=weights, names=s.value("names", "", str) or None))
        s.endArray()
        return models

    def add_taught_model(self, choice: ModelChoice) -> None:
        """Remember an exported model (one entry per cfg path: exporting again replaces it)."""
        models = [m for m in self.taught_models() if m.cfg != choice.cfg] + [choice]
        s = self._store
        s.remove("taught")
        s.beginWriteArray("taught", len(models))
        for i, m in enumerate(models):
            s.setArrayIndex(i)
            s.setValue("cfg", m.cfg)
            s.setValue("weights", m.weights)
            s.setValue("names", m.names or "")
        s.endArray()
