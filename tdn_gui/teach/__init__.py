"""The Teach view: your own classes on top of the loaded model.

view (the layout, and whether training may start) holds class_list (the project and its classes),
class_images (the selected class's thumbnails, drops and captures arriving), live_panel (the
preview, the camera, Hold to capture) and training_panel (Train, progress, the chart in
training_plot, the result in result_text's words, Export through export_dialog). project_folder is
the project itself, a folder `tdn teach` reads (no Qt); file_threads writes into it and reads
thumbnails off the GUI thread; widgets has the class tree and the thumbnail strip.
"""
