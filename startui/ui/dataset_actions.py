"""Every action of the Dataset tab, once, for the page and the API alike (no Gradio here): who
is acting comes in as a name (the app takes it from the request, never from an input), the
library checks what that person may do, and a refusal is an exception with its message.

Dashboards come from :mod:`startui.rft.dashboard` (the code ``python -m startui report`` runs),
exports from :func:`startui.ui.dataset_ops.export_zip` (``python -m startui export``'s code),
campaigns and agreement from :mod:`startui.review.campaigns` and
:mod:`startui.review.agreement` (``python -m startui review campaign|agreement|adjudicate``),
batches from :class:`startui.ui.dataset_ops.BatchJob` (``python -m startui generate``'s code).
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from startui.infer.backends import BackendError
from startui.review import agreement, campaigns, decisions
from startui.review.session import Item, load_item
from startui.rft import dashboard
from startui.store.problems import ImportReport, ProblemImportError, import_problems
from startui.ui import dataset_ops as ops
from startui.ui import review_render as rr
from startui.ui.dataset_render import NO_CAMPAIGN
from startui.ui.settings import RunSettings
from startui.ui.studio import Services

CAMPAIGN_OPTIONS = ("run", "review_status", "verdict", "per_problem", "overlap", "reviewers",
                    "adjudicator", "lease_minutes")


def _name(value: Any) -> str | None:
    v = str(value or "").strip()
    return None if v in ("", NO_CAMPAIGN, rr.ANY, "(none)") else v


class DatasetActions:
    """What people do in the Dataset tab, against one app's services and its one batch job."""

    def __init__(self, services: Services, *, root: str | Path | None = None) -> None:
        self.services = services
        self.job = ops.BatchJob()
        self.root = root  # where export zips are made (default: the system's temp folder)
        self._dashboards: dict[tuple[Any, ...], tuple[float, dashboard.Dashboard]] = {}

    @property
    def store(self) -> Any:
        if self.services.store is None:
            raise ValueError("this app runs without a store: there is no dataset to build")
        return self.services.store

    @property
    def public(self) -> bool:
        return self.services.deployment.public

    # --- dashboards and export -----------------------------------------------------------

    def dashboards(self, who: str, runs: Any, campaign: Any, *,
                   max_age: float = 0.0) -> dashboard.Dashboard:
        """The dashboards; ``max_age``: one gathered that many seconds ago will do (opening
        the tab must not re-read a large store for every click on it)."""
        ops.may_look(who)
        names = ops.csv_list(runs)
        key = (tuple(names), _name(campaign))
        made, d = self._dashboards.get(key, (0.0, None))
        if d is None or time.monotonic() - made > max_age:
            d = dashboard.gather(self.store, names or None, campaign=key[1])
            self._dashboards = {key: (time.monotonic(), d)}  # the latest one only
        return d

    def preview(self, who: str, runs: Any, options: Mapping[str, Any]) -> Any:
        return ops.preview(self.store, runs, options, by=who)

    def export(self, who: str, runs: Any, options: Mapping[str, Any]) -> ops.ExportZip:
        return ops.export_zip(self.store, runs, options, by=who, root=self.root)

    # --- campaigns -----------------------------------------------------------------------

    def create_campaign(self, who: str, name: str, options: Mapping[str, Any],
                        ) -> campaigns.Campaign:
        """An admin's campaign over a queue filter (run, review status, verdict), at most
        ``per_problem`` per problem, ``overlap`` reviewers per item."""
        ops.may_look(who)
        unknown = sorted(set(options) - set(CAMPAIGN_OPTIONS))
        if unknown:
            raise ValueError(f"unknown campaign option(s) {', '.join(unknown)}; the options are "
                             f"{', '.join(CAMPAIGN_OPTIONS)}")
        o = dict(options)
        run = _name(o.get("run"))
        run_id = self.store.resolve_runs([run])[0] if run else None
        f = rr.queue_filter(o.get("review_status") or "pending", o.get("verdict"), run_id)
        lease = float(o.get("lease_minutes") or campaigns.DEFAULT_LEASE_SECONDS / 60)
        return campaigns.create_campaign(
            self.store, (name or "").strip(), by=who, filter=f,
            reviewers=ops.csv_list(o.get("reviewers")), overlap=int(o.get("overlap") or 2),
            per_problem=ops.whole(o.get("per_problem")),
            adjudicator=_name(o.get("adjudicator")), lease_seconds=max(1, round(lease * 60)))

    def close_campaign(self, who: str, name: str, *, reopen: bool = False) -> campaigns.Campaign:
        ops.may_look(who)
        return campaigns.close_campaign(self.store, self._campaign(name), by=who, reopen=reopen)

    def _campaign(self, name: Any) -> str:
        c = _name(name)
        if c is None:
            raise ValueError("pick a campaign first")
        return c

    def campaign(self, who: str, name: Any) -> tuple[campaigns.Campaign, campaigns.Progress]:
        ops.may_look(who)
        c = campaigns.get_campaign(self.store, self._campaign(name))
        return c, campaigns.progress(self.store, c)

    def agreement(self, who: str, name: Any) -> agreement.AgreementReport:
        ops.may_look(who)
        return agreement.campaign_agreement(self.store, self._campaign(name))

    def next_item(self, who: str, name: Any) -> Item | None:
        """The campaign's next item for ``who`` (their held one first), as the Review tab
        shows it."""
        ops.may_look(who)
        tid = campaigns.next_item(self.store, self._campaign(name), who)
        return load_item(self.store, tid, who) if tid else None

    def decide(self, who: str, name: Any, tid: str, decision: str, *, score: int | None = None,
               labels: list[str] | None = None, comment: str = "",
               override_reason: str | None = None) -> Any:
        """``who``'s vote on an item of the campaign."""
        ops.may_look(who)
        return decisions.decide(self.store, (tid or "").strip(), reviewer=who,
                                decision=decision, score=score, labels=labels or [],
                                comment=comment or "", override_reason=override_reason,
                                campaign=self._campaign(name))

    def disputes(self, who: str, name: Any, *, include_adjudicated: bool = False) -> list[Any]:
        ops.may_look(who)
        return campaigns.needs_adjudication(self.store, self._campaign(name), by=who,
                                            include_adjudicated=include_adjudicated)

    def adjudication(self, who: str, name: Any, tid: str) -> tuple[Any, Item]:
        """Every review of one item side by side, and the item itself."""
        ops.may_look(who)
        tid = (tid or "").strip()
        if not tid:
            raise ValueError("pick an item that needs adjudication first")
        view = campaigns.adjudication_view(self.store, self._campaign(name), tid, by=who)
        return view, load_item(self.store, tid, who)

    def adjudicate(self, who: str, name: Any, tid: str, decision: str, *, comment: str = "",
                   score: int | None = None) -> Any:
        ops.may_look(who)
        if not (tid or "").strip():
            raise ValueError("pick an item that needs adjudication first")
        return campaigns.adjudicate(self.store, self._campaign(name), tid.strip(), decision,
                                    by=who, comment=comment or "", score=score)

    # --- batch generation ----------------------------------------------------------------

    def import_problems(self, who: str, path: str | None, *, source: str | None = None,
                        skip_invalid: bool = False) -> ImportReport:
        """An uploaded problem file into the store (the importer's messages for a bad file)."""
        ops.require_admin(self.store, who, "importing problems", public=self.public)
        if not path:
            raise ValueError("choose a problem file first (JSONL, JSON, CSV or Parquet)")
        name = Path(path).name  # the upload's own name, not the server's cache folder
        try:
            report = import_problems(self.store, path, source=(source or "").strip() or None,
                                     skip_invalid=skip_invalid)
        except ProblemImportError as e:
            raise ProblemImportError(str(e).replace(str(path), name), e.report) from None
        report.path = name
        return report

    def batch_request(self, options: Mapping[str, Any]) -> ops.BatchRequest:
        """The batch asked for, with the backend the deployment resolves the choice to (in
        public mode only its own choices; a visitor's model or URL never reaches a backend)."""
        o = dict(options)
        settings = RunSettings(backend=str(o.pop("backend", "") or self.default_backend()),
                               model=str(o.pop("model", "") or "") or None,
                               base_url=str(o.pop("base_url", "") or "") or None,
                               max_tokens=int(o.pop("max_tokens", 2048)))
        return ops.BatchRequest.from_options(o, self.services.deployment.resolve(settings))

    def default_backend(self) -> str:
        d = self.services.deployment
        return d.labels[0] if d.public and d.choices else RunSettings().backend

    async def start_batch(self, who: str, options: Mapping[str, Any] | None = None) -> dict:
        """Start a batch (``options`` None: the last one again, which resumes it)."""
        ops.require_admin(self.store, who, "starting a batch", public=self.public)
        if options is None:
            if self.job.request is None:
                raise ValueError("no batch to resume yet: start one")
            req = self.job.request
        else:
            req = self.batch_request(options)
        if self.job.running:
            raise ValueError(f"batch {self.job.request.run if self.job.request else ''} is "
                             "running: stop it first (one batch at a time)")
        problems = await asyncio.to_thread(ops.batch_problems, self.store, req)
        try:
            backend = self.services.backend(req.settings)
        except BackendError as e:
            raise ValueError(f"the backend cannot start: {e}") from e
        self.job.start(self.store, backend, await self.services.pool(), req, problems, by=who)
        return self.job.status()

    def stop_batch(self, who: str) -> dict:
        ops.require_admin(self.store, who, "stopping a batch", public=self.public)
        if not self.job.stop():
            raise ValueError("no batch is running")
        return self.job.status()

    def batch_status(self, who: str) -> dict:
        ops.may_look(who)
        return self.job.status()

    # --- users ---------------------------------------------------------------------------

    def users(self, who: str) -> list[Any]:
        ops.may_look(who)
        return self.store.list_users()

    def add_user(self, who: str, name: str, password: str | None, role: str) -> Any:
        return ops.add_user(self.store, name, password, role, by=who)

    def set_role(self, who: str, name: str, role: str) -> Any:
        return ops.change_role(self.store, name, role, by=who)

    def remove_user(self, who: str, name: str) -> None:
        ops.remove_user(self.store, name, by=who)
