"""The store: where every problem, run, trajectory, review and revision lives (SQLAlchemy).

Stage 2 of the data flow (problem → engine → **store** → review → export). Everything that reads
or writes the database goes through :class:`Store` and the functions of this package; no other
stage builds its own ORM queries.

May import: the shared core (``startui.trajectory``, ``events``, ``answers``, ``resources``).
Never: ``infer`` (the engine does not know the store exists; :class:`Recorder` only consumes its
events), ``review``, ``rft``, ``ui``, ``cli``, or Gradio.
"""

from startui.store.facade import Store, default_url, describe_url, normalize_url
from startui.store.recorder import Recorder
from startui.store.repository import ConflictError, NotFoundError, StoreError

__all__ = ["ConflictError", "NotFoundError", "Recorder", "Store", "StoreError", "default_url",
           "describe_url", "normalize_url"]
