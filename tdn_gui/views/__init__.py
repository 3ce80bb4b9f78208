"""The main window and its views: images, webcam (with its capture thread), the status bar's
model and kernel read-outs, File ▸ Classify folder…; the widgets they share (canvas, top-5 bars).
Every piece of engine work goes through tdn_gui.worker."""
