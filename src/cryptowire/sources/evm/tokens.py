"""The watchlist admin: add, remove, list tokens and read their symbol, for every surface.

The native admin ops, REST ``/api/v1/tokens``, the CLI and the seed 000 dialect all go
through :class:`TokenAdmin`. ``add`` takes both payload shapes of PROTOCOLS.md 2.3:

- explicit ``{chain, name, decimals, address, pair, isToken0, group}`` (the seed's
  documented shape; ``name`` is the symbol there, ``symbol`` also works), read as given;
- short ``{chain, address, paired?}``: decimals, symbol and name are read from the ERC-20,
  the pair from the chain's Uniswap-V2 factory ``getPair(token, paired)`` with ``paired``
  defaulting to the chain's wrapped native token, ``isToken0 = token < paired``.

Adding a token twice is refused with a reason, never duplicated (the store's primary key).
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from typing import Any

from eth_utils.address import to_checksum_address
from web3 import AsyncWeb3
from web3.exceptions import Web3Exception

from cryptowire.errors import CryptowireError, ProtocolError, SourceError
from cryptowire.onchain import TrackedToken
from cryptowire.settings import ChainSettings, EvmSettings
from cryptowire.sources.evm.abi import ERC20_ABI, FACTORY_ABI
from cryptowire.sources.evm.rpc import RpcPool
from cryptowire.store.evm import EvmStore

#: Used with ``fullmatch``: ``$`` would accept a trailing newline.
ADDRESS = re.compile(r"0x[0-9a-fA-F]{40}")
ZERO_ADDRESS = "0x" + "0" * 40


def chain_of(settings: EvmSettings, value: object) -> ChainSettings:
    """The configured chain for an id (int or digits) or a name."""
    known = ", ".join(f"{c.name} ({c.id})" for c in settings.chains)
    if isinstance(value, bool) or not isinstance(value, int | str):  # True == 1: not a chain
        raise ProtocolError("INVALID_ARGS", f"'chain' is a chain id or name: {known}.")
    for chain in settings.chains:
        if value == chain.id or str(value).lower() in (str(chain.id), chain.name):
            return chain
    raise ProtocolError("INVALID_ARGS", f"Unknown chain {str(value)[:40]!r}. "
                                        f"Known chains: {known}.")


def address_of(value: object, what: str = "address") -> str:
    if not isinstance(value, str) or not ADDRESS.fullmatch(value):
        raise ProtocolError("INVALID_ARGS", f"'{what}' must be a 0x-prefixed 40-hex-digit "
                                            f"address, got {str(value)[:60]!r}.")
    return value.lower()


def text_of(payload: Mapping[str, Any], field: str, max_len: int) -> str | None:
    """An optional string field (absent, ``null`` or ``""``: ``None``), at most ``max_len``
    characters; anything else is refused with the reason (never stored as ``str(value)``)."""
    value = payload.get(field)
    if value is None or value == "":
        return None
    if not isinstance(value, str):
        raise ProtocolError("INVALID_ARGS", f"'{field}' must be a string.")
    if len(value) > max_len:
        raise ProtocolError("INVALID_ARGS", f"'{field}' is longer than {max_len} characters.")
    if not value.isprintable():  # NUL (Postgres refuses it), newlines (Telegram, logs)
        raise ProtocolError("INVALID_ARGS", f"'{field}' cannot contain control characters.")
    return value


def decimals_of(payload: Mapping[str, Any], field: str, default: int | None = None) -> int:
    """A token's decimals: a JSON integer 0-77 (the most a uint256 amount can have);
    absent or ``null``: ``default`` when there is one."""
    value = payload.get(field)
    if value is None:
        value = default
    if isinstance(value, bool) or not isinstance(value, int) or not 0 <= value <= 77:
        raise ProtocolError("INVALID_ARGS", f"'{field}' must be an integer 0-77.")
    return value


async def read_erc20(pool: RpcPool, address: str) -> tuple[str, str, int]:
    """``(symbol, name, decimals)`` of an ERC-20 read on chain."""
    def contract(w3: AsyncWeb3[Any]) -> Any:
        return w3.eth.contract(address=to_checksum_address(address), abi=ERC20_ABI)

    try:
        decimals = int(await pool.call("decimals", lambda w3: contract(w3).functions
                                       .decimals().call()))
        symbol = str(await pool.call("symbol", lambda w3: contract(w3).functions
                                     .symbol().call()))
        try:
            name = str(await pool.call("name", lambda w3: contract(w3).functions.name().call()))
        except (CryptowireError, Web3Exception):
            name = symbol
    except (SourceError, Web3Exception) as exc:
        raise SourceError(f"Cannot read ERC-20 {address}: {exc}") from exc
    return symbol, name, decimals


async def read_pair(pool: RpcPool, factory: str, token: str, paired: str) -> str | None:
    """The factory's pair for ``(token, paired)`` or ``None`` when there is none."""
    try:
        pair = await pool.call("getPair", lambda w3: w3.eth.contract(
            address=to_checksum_address(factory), abi=FACTORY_ABI).functions.getPair(
            to_checksum_address(token), to_checksum_address(paired)).call())
    except (SourceError, Web3Exception) as exc:
        raise SourceError(f"Cannot read the pair from factory {factory}: {exc}") from exc
    text = str(pair).lower()
    return None if text == ZERO_ADDRESS else text


class TokenAdmin:
    """Watchlist operations over the store, reading chains through per-chain RPC pools."""

    def __init__(self, settings: EvmSettings, store: EvmStore,
                 pools: Mapping[int, RpcPool] | None = None) -> None:
        self.settings = settings
        self.store = store
        self._pools: dict[int, RpcPool] = dict(pools or {})
        self._own: list[RpcPool] = []

    async def pool(self, chain: ChainSettings) -> RpcPool:
        pool = self._pools.get(chain.id)
        if pool is None:
            pool = RpcPool(chain.rpc_urls, timeout_s=self.settings.rpc_timeout_s,
                           backoff_s=self.settings.rpc_backoff_s,
                           backoff_cap_s=self.settings.rpc_backoff_cap_s)
            await pool.start()
            self._pools[chain.id] = pool
            self._own.append(pool)
        return pool

    async def close(self) -> None:
        for pool in self._own:
            await pool.close()
        self._own.clear()

    async def resolve(self, payload: Mapping[str, Any]) -> TrackedToken:
        """The token a payload describes (reading the chain for what it leaves out)."""
        if not isinstance(payload, Mapping):
            raise ProtocolError("INVALID_ARGS", 'add_token takes {"chain": 1, "address": '
                                                '"0x..."} (optionally "paired", "group").')
        # Every field is checked for its type here: a wrong one gets INVALID_ARGS with the
        # field's name, never a driver error (issue 10, item 17).
        chain = chain_of(self.settings, payload.get("chain"))
        address = address_of(payload.get("address"))
        group = text_of(payload, "group", 100)
        paired_raw = payload.get("paired")
        if paired_raw is None or paired_raw == "":
            paired_raw = chain.wrapped_native or None
        paired = address_of(paired_raw, "paired") if paired_raw is not None else None
        explicit = all(payload.get(k) is not None for k in ("decimals", "pair", "isToken0"))
        if explicit:
            decimals = decimals_of(payload, "decimals")
            # name and symbol are cut to the store's widths, as the seed's shape allows.
            name = text_of(payload, "name", 10_000)
            symbol = text_of(payload, "symbol", 10_000) or name
            if not symbol:
                raise ProtocolError("INVALID_ARGS", "Give 'name' (the symbol) or 'symbol'.")
            is_token0 = payload["isToken0"]
            if not isinstance(is_token0, bool):
                raise ProtocolError("INVALID_ARGS", "'isToken0' must be true or false.")
            paired_symbol = text_of(payload, "paired_symbol", 10_000)
            return TrackedToken(
                chain=chain.id, address=address, symbol=symbol[:64],
                name=(name or symbol)[:200], decimals=decimals,
                pair=address_of(payload["pair"], "pair"), paired=paired,
                paired_symbol=paired_symbol[:64] if paired_symbol else None,
                paired_decimals=decimals_of(payload, "paired_decimals", 18),
                is_token0=is_token0, group=group,
            )  # fmt: skip
        if paired is None:
            raise ProtocolError("INVALID_ARGS", f"Chain {chain.name} has no wrapped_native "
                                                "token configured: give 'paired'.")
        if not chain.factory:
            raise ProtocolError("INVALID_ARGS", f"Chain {chain.name} has no Uniswap-V2 "
                                                "factory configured: give 'pair'.")
        pool = await self.pool(chain)
        symbol, name, decimals = await read_erc20(pool, address)
        pair = await read_pair(pool, chain.factory, address, paired)
        if pair is None:
            raise SourceError("Pair not found")
        paired_symbol, _, paired_decimals = await read_erc20(pool, paired)
        return TrackedToken(
            chain=chain.id, address=address, symbol=symbol[:64], name=name[:200],
            decimals=decimals, pair=pair, paired=paired, paired_symbol=paired_symbol,
            paired_decimals=paired_decimals, is_token0=address < paired, group=group,
        )  # fmt: skip

    async def add(self, payload: Mapping[str, Any]) -> TrackedToken:
        """Resolve and store a token; a token already tracked is refused with a reason."""
        token = await self.resolve(payload) if isinstance(payload, Mapping) else \
            await self.resolve({})
        if await self.store.get_token(token.chain, token.address) is not None:
            raise SourceError(f"Token {token.address} is already tracked on chain "
                              f"{token.chain}.")
        return await self.store.add_token(token)

    async def remove(self, payload: Mapping[str, Any]) -> bool:
        if not isinstance(payload, Mapping):
            raise ProtocolError("INVALID_ARGS", 'remove_token takes {"chain", "address"}.')
        chain = chain_of(self.settings, payload.get("chain"))
        return await self.store.remove_token(chain.id, address_of(payload.get("address")))

    async def list(self, chain: object = None) -> list[TrackedToken]:
        chain_id = chain_of(self.settings, chain).id if chain not in (None, "") else None
        return await self.store.list_tokens(chain_id)

    async def symbol(self, payload: Mapping[str, Any]) -> str:
        """The symbol of a token: from the watchlist, else read from the chain."""
        if not isinstance(payload, Mapping):
            raise ProtocolError("INVALID_ARGS", 'token_symbol takes {"chain", "address"}.')
        chain = chain_of(self.settings, payload.get("chain"))
        address = address_of(payload.get("address"))
        known = await self.store.get_token(chain.id, address)
        if known is not None:
            return known.symbol
        symbol, _, _ = await read_erc20(await self.pool(chain), address)
        return symbol
