"""The Gradio shell: one module per tab; callbacks only wire library calls."""

import os

# startui runs offline by design: no usage analytics calls from the web app.
os.environ.setdefault("GRADIO_ANALYTICS_ENABLED", "False")
