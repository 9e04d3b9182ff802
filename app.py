"""START Studio — the Gradio app (what `python app.py` and Hugging Face Spaces run)."""

from startui.ui.app import build_app, launch

demo = build_app()

if __name__ == "__main__":
    launch(demo, warm=True)
