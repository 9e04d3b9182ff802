"""Hint-RFT: batch Hint-infer, rule scoring, filters, D_seed / D_START selection, the export for
fine-tuning, and the analytics and report over a run.

Stage 4 of the data flow (problem → engine → store → review → **export**). It reads and writes
the database only through :class:`startui.store.Store`.

May import: the shared core, ``infer`` (batch generation drives the engine), ``store`` and
``review``. Never: ``ui``, ``cli``, or Gradio.
"""
