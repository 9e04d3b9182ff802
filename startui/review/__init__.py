"""Review: what people do with trajectories — the queue, decisions, step labels, scores, edits
checked by re-running their code, and who the reviewers are; campaigns that hand each trajectory
to several reviewers, their agreement (kappa, alpha) and the adjudication of disagreements. No
Gradio here.

Stage 3 of the data flow (problem → engine → store → **review** → export). It reads and writes
the database only through :class:`startui.store.Store`.

May import: the shared core, ``infer`` (re-running edited code in a fresh kernel) and ``store``.
Never: ``rft``, ``ui``, ``cli``, or Gradio.
"""
