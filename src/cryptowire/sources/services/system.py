"""health_checker, persistence, scheduler, huggingface and the on-chain status services
(pool_manager, rpc_nodes, explorers, onchain): read from the node's own state."""

from __future__ import annotations

import os
from typing import Any

import sqlalchemy as sa

from cryptowire.clock import iso, now_ms
from cryptowire.core.source import SourceStatus
from cryptowire.sources.evm.rpc import public_rpc_entry
from cryptowire.sources.services.context import ServiceContext, not_configured, stamp


class _Stateless:
    def __init__(self, ctx: ServiceContext) -> None:
        self._ctx = ctx

    async def close(self) -> None:
        return None


def _status_json(st: SourceStatus, now: int) -> dict[str, Any]:
    age = round((now - st.last_message_ms) / 1000, 3) if st.last_message_ms else None
    return {
        "status": "healthy" if st.healthy else "unhealthy", "state": st.state,
        "detail": st.detail, "demo": st.demo,
        "response_time_ms": st.extra.get("latency_ms"), "last_message_age_s": age,
        "last_message": iso(st.last_message_ms) if st.last_message_ms else None,
        "last_check": iso(now), "messages": st.messages, "errors": st.errors,
        "reconnects": st.reconnects, "topics": st.topics,
    }


class HealthChecker(_Stateless):
    """Every source's state, latency (when the source measures it) and last message age,
    plus the store and the bus."""

    async def collect(self) -> dict[str, Any]:
        node = self._ctx.node
        now = now_ms()
        providers = {st.name: _status_json(st, now) for st in node.source_statuses()}
        providers["store"] = {"status": "healthy" if node.store_ok else "unhealthy",
                              "state": "up" if node.store_ok else "down", "last_check": iso(now)}
        bus_ok = node.broker.healthy()
        providers["bus"] = {"status": "healthy" if bus_ok else "unhealthy",
                            "state": "up" if bus_ok else "down", "type": node.broker.name,
                            "last_check": iso(now)}
        healthy = sum(1 for p in providers.values() if p["status"] == "healthy")
        total = len(providers)
        overall = "healthy" if healthy == total else "degraded" if healthy else "unhealthy"
        return stamp({"overall_health": overall, "healthy_count": healthy,
                      "unhealthy_count": total - healthy, "total_providers": total,
                      "providers": providers})


def _human(size: int) -> str:
    value = float(size)
    for unit in ("B", "KB", "MB", "GB"):
        if value < 1024 or unit == "GB":
            return f"{value:.1f} {unit}" if unit != "B" else f"{size} B"
        value /= 1024
    raise AssertionError("unreachable")


def _sqlite_files(path: str) -> tuple[int, int | None]:
    """Bytes of the database file and its WAL, and when either was last written (ms)."""
    files = [f for f in (path, f"{path}-wal") if os.path.exists(f)]
    size = sum(os.path.getsize(f) for f in files)
    last = int(max(os.path.getmtime(f) for f in files) * 1000) if files else None
    return size, last


class Persistence(_Stateless):
    """The store: where, how big, how many rows per table, when last written (SQLite)."""

    async def collect(self) -> dict[str, Any]:
        store = self._ctx.node.store
        if store is None:
            return not_configured("No store is open.")
        engine = store.engine
        dialect = engine.dialect.name
        async with engine.connect() as conn:
            names = await conn.run_sync(lambda c: sa.inspect(c).get_table_names())
            counts: dict[str, int] = {}
            for name in sorted(names):
                if name == "alembic_version":
                    continue
                stmt = sa.select(sa.func.count()).select_from(sa.table(name))
                counts[name] = int((await conn.execute(stmt)).scalar_one())
            size: int | None = None
            last_save: str | None = None
            if dialect == "postgresql":
                size = int((await conn.execute(
                    sa.text("SELECT pg_database_size(current_database())"))).scalar_one())
        if dialect == "sqlite":
            path = engine.url.database
            if path and path != ":memory:":
                size, last_ms = _sqlite_files(path)
                last_save = iso(last_ms) if last_ms else None
        return stamp({
            "storage_location": engine.url.render_as_string(hide_password=True),
            "backend": dialect, "total_records": sum(counts.values()), "tables": counts,
            "storage_size": _human(size) if size is not None else None,
            "storage_size_bytes": size, "last_save": last_save,
            "healthy": self._ctx.node.store_ok,
        })


class Scheduler(_Stateless):
    """The services' own periodic jobs (the only scheduler cryptowire has)."""

    async def collect(self) -> dict[str, Any]:
        runner = self._ctx.runner
        jobs = [job.describe() for job in runner.jobs.values()]
        return stamp({"running": True, "total_jobs": len(jobs),
                      "active_jobs": len(runner.active()), "jobs": jobs})


class HuggingFace(_Stateless):
    async def collect(self) -> dict[str, Any]:
        models = self._ctx.settings.services.huggingface_models
        if not models:
            return not_configured("No HuggingFace models configured "
                                  "(services.huggingface_models).")
        return stamp({"status": "configured", "total_models": len(models),
                      "available_models": list(models), "last_refresh": None})


#: Per-chain fields each service reports from an EVM watcher's status (``extra["chains"]``).
_CHAIN_FIELDS: dict[str, tuple[str, ...]] = {
    "rpc_nodes": ("chain_id", "head", "rpc"),
    "onchain": ("chain_id", "head", "cursor", "lag", "tokens", "events", "reorgs", "removed",
                "errors", "last_error"),
    "explorers": ("chain_id", "head", "cursor", "lag", "blocks"),
}


def _public_rpc(chain: dict[str, Any]) -> list[dict[str, Any]]:
    """A chain's RPC health entries with redacted URLs: these payloads go to anonymous
    subscribers, and provider keys live in the URL's path or query."""
    entries = [u for u in chain.get("rpc") or [] if isinstance(u, dict)]
    return [public_rpc_entry(u, i) for i, u in enumerate(entries, start=1)]


def _pools(chains: dict[str, Any]) -> dict[str, Any]:
    """The seed's pool_manager shape from each chain's RPC pool health; a source is named by
    its label (``#1 https://host/***``)."""
    pools: dict[str, Any] = {}
    active: list[str] = []
    inactive: list[str] = []
    failovers = 0
    for name, chain in chains.items():
        urls = _public_rpc(chain)
        healthy = [u["label"] for u in urls if u.get("healthy")]
        benched = [u["label"] for u in urls if not u.get("healthy")]
        failovers += sum(int(u.get("failovers") or 0) for u in urls)
        active += healthy
        inactive += benched
        pools[name] = {"active_source": healthy[0] if healthy else None,
                       "available_sources": healthy, "benched_sources": benched,
                       "health": "healthy" if healthy else "unhealthy", "urls": urls}
    return {"pools": pools, "active_sources": active, "inactive_sources": inactive,
            "failover_count": failovers}


class ChainStatus(_Stateless):
    """pool_manager, rpc_nodes, explorers, onchain: the EVM sources' own status reports."""

    def __init__(self, ctx: ServiceContext, service: str) -> None:
        super().__init__(ctx)
        self._service = service

    async def collect(self) -> dict[str, Any]:
        node = self._ctx.node
        chain_sources = [s for s in node.sources if s.kinds & {"swap", "burn"}]
        live = [s.status() for s in chain_sources if not s.status().demo]
        if not live:
            why = ("only the demo source serves on-chain channels (synthetic, no RPC)"
                   if chain_sources else "no EVM source is running (evm.enabled = false)")
            return not_configured(f"No chain watcher: {why}.")
        now = now_ms()
        chains: dict[str, Any] = {}
        for st in live:
            reported = st.extra.get("chains")
            if isinstance(reported, dict):
                chains.update({n: c for n, c in reported.items() if isinstance(c, dict)})
        data: dict[str, Any] = {"sources": {st.name: _status_json(st, now) for st in live}}
        if self._service == "pool_manager":
            data.update(_pools(chains))
        else:
            keep = _CHAIN_FIELDS[self._service]
            data["chains"] = {n: {k: _public_rpc(c) if k == "rpc" else c.get(k) for k in keep}
                              for n, c in chains.items()}
        return stamp(data)
