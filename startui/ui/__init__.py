"""The web app: :mod:`~startui.ui.studio` (one visitor's runs, no Gradio), the pure renderer
(:mod:`~startui.ui.render`) and one Gradio module per tab. Callbacks only wire library calls.

The top layer with :mod:`startui.cli`: it may import every stage. Only modules here import Gradio.
"""

import os

# startui runs offline by design: no usage analytics calls from the web app.
os.environ.setdefault("GRADIO_ANALYTICS_ENABLED", "False")
