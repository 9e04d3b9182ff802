"""The Gradio shell: one module per tab; callbacks only wire library calls."""
