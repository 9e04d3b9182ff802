"""Hint-infer: the engine (stream → detect terminators → run code → insert hints → resume), the
hint library and policies, the kernel pool where the model's code runs, and the backends.

Stage 1 of the data flow (problem → **engine** → store → review → export). The engine emits
events; whoever wants them subscribes (a terminal, a web page, the store's ``Recorder``).

May import: the shared core (``startui.trajectory``, ``events``, ``answers``, ``resources``).
Never: ``store``, ``review``, ``rft``, ``ui``, ``cli``, or Gradio.
"""
