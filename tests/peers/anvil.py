"""A real EVM node for tests: anvil from npm ``@foundry-rs/anvil`` (TESTING.md, "anvil").

:class:`AnvilNode` starts the binary on a free loopback port, waits for ``eth_chainId`` and
stops it by PID. :class:`Dex` deploys the project's own compiled contracts
(``tests/fixtures/evm/CryptowireDex.json``: ERC-20s, a Uniswap-V2-shaped factory/pair/router)
and drives swaps and burns with pre-encoded, sequential ``eth_sendTransaction`` calls (one
account, so never concurrently: "nonce too low").

Under ``CI=true`` a missing anvil fails the test; elsewhere it skips with the reason.
"""

from __future__ import annotations

import asyncio
import json
import os
import platform
import signal
import socket
import subprocess
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import aiohttp
import pytest
from eth_utils import to_checksum_address
from web3 import AsyncHTTPProvider, AsyncWeb3

ROOT = Path(__file__).resolve().parents[2]
ARTIFACT = ROOT / "tests" / "fixtures" / "evm" / "CryptowireDex.json"
CHAIN_ID = 31337
DEAD = "0x000000000000000000000000000000000000dEaD"
ZERO = "0x0000000000000000000000000000000000000000"
GAS = 5_000_000

_ARCH = {"x86_64": "amd64", "amd64": "amd64", "aarch64": "arm64", "arm64": "arm64"}


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def anvil_binary() -> Path | None:
    """The platform's anvil under ``node_modules/@foundry-rs/`` (or ``$CRYPTOWIRE_ANVIL``)."""
    override = os.environ.get("CRYPTOWIRE_ANVIL")
    if override:
        return Path(override)
    system = {"linux": "linux", "darwin": "darwin", "windows": "win32"}.get(
        platform.system().lower(), platform.system().lower())
    arch = _ARCH.get(platform.machine().lower(), platform.machine().lower())
    base = ROOT / "node_modules" / "@foundry-rs"
    exe = "anvil.exe" if system == "win32" else "anvil"
    candidate = base / f"anvil-{system}-{arch}" / "bin" / exe
    if candidate.is_file():
        return candidate
    found = sorted(base.glob(f"anvil-{system}-*/bin/{exe}")) if base.is_dir() else []
    return found[0] if found else None


def require_anvil() -> Path:
    binary = anvil_binary()
    if binary is None or not binary.is_file():
        reason = "anvil not installed (run `npm ci` in the repo root)"
        if os.environ.get("CI") == "true":
            pytest.fail(reason)
        pytest.skip(reason)
    return binary


async def rpc(url: str, method: str, params: list[Any] | None = None) -> Any:
    async with aiohttp.ClientSession() as http, http.post(url, json={
            "jsonrpc": "2.0", "id": 1, "method": method, "params": params or []}) as resp:
        body = await resp.json()
    if "error" in body:
        raise RuntimeError(f"{method}: {body['error']}")
    return body["result"]


class AnvilNode:
    """One anvil process on ``127.0.0.1:<port>``."""

    def __init__(self, *, block_time: float | None = None) -> None:
        self.binary = require_anvil()
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self.block_time = block_time
        self.proc: subprocess.Popen[bytes] | None = None

    async def start(self) -> AnvilNode:
        args = [str(self.binary), "--host", "127.0.0.1", "--port", str(self.port), "--silent",
                "--chain-id", str(CHAIN_ID)]
        if self.block_time:
            args += ["--block-time", str(self.block_time)]
        self.proc = subprocess.Popen(args, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
        for _ in range(200):
            try:
                if int(await rpc(self.url, "eth_chainId"), 16) == CHAIN_ID:
                    return self
            except (aiohttp.ClientError, OSError):
                pass
            if self.proc.poll() is not None:
                raise RuntimeError(f"anvil exited: {self.proc.stderr.read()!r}")  # type: ignore[union-attr]
            await asyncio.sleep(0.05)
        raise RuntimeError("anvil did not answer eth_chainId within 10 s")

    def stop(self) -> None:
        if self.proc is not None and self.proc.poll() is None:
            os.kill(self.proc.pid, signal.SIGTERM)
            try:
                self.proc.wait(5)
            except subprocess.TimeoutExpired:
                os.kill(self.proc.pid, signal.SIGKILL)
                self.proc.wait(5)
        self.proc = None

    async def __aenter__(self) -> AnvilNode:
        return await self.start()

    async def __aexit__(self, *exc: object) -> None:
        self.stop()


def artifact() -> dict[str, Any]:
    data: dict[str, Any] = json.loads(ARTIFACT.read_text())
    return data


@dataclass
class DexToken:
    address: str
    symbol: str
    decimals: int
    pair: str


class Dex:
    """The deployed contracts on one node and helpers that mine swaps and burns."""

    def __init__(self, url: str) -> None:
        self.url = url
        self.w3 = AsyncWeb3(AsyncHTTPProvider(url))
        self.art = artifact()
        self.account = ""
        self.weth = ""
        self.factory = ""
        self.router = ""
        self.tokens: list[DexToken] = []

    async def close(self) -> None:
        await self.w3.provider.disconnect()

    def contract(self, name: str, address: str | None = None) -> Any:
        spec = self.art[name]
        if address is None:
            return self.w3.eth.contract(abi=spec["abi"], bytecode=spec["bytecode"])
        return self.w3.eth.contract(address=to_checksum_address(address), abi=spec["abi"])

    async def send(self, to: str | None, data: str, *, wait: bool = True) -> str:
        tx: dict[str, Any] = {"from": self.account, "data": data, "gas": hex(GAS)}
        if to is not None:
            tx["to"] = to
        tx_hash: str = await rpc(self.url, "eth_sendTransaction", [tx])
        if wait:
            receipt = await self.receipt(tx_hash)
            if int(receipt["status"], 16) != 1:
                raise RuntimeError(f"transaction failed: {receipt}")
        return tx_hash

    async def receipt(self, tx_hash: str) -> dict[str, Any]:
        """The receipt once mined (anvil mines just after eth_sendTransaction returns)."""
        for _ in range(400):
            receipt: dict[str, Any] | None = await rpc(
                self.url, "eth_getTransactionReceipt", [tx_hash])
            if receipt is not None:
                return receipt
            await asyncio.sleep(0.005)
        raise RuntimeError(f"transaction {tx_hash} not mined within 2 s")

    async def deploy(self, name: str, *args: Any) -> str:
        data = self.contract(name).constructor(*args).data_in_transaction
        tx_hash = await self.send(None, data)
        receipt = await self.receipt(tx_hash)
        return str(to_checksum_address(receipt["contractAddress"]))

    async def setup(self, n_tokens: int = 2, *, decimals: list[int] | None = None) -> Dex:
        """WETH, factory, router, and ``n_tokens`` tokens each paired with WETH and funded."""
        self.account = str(to_checksum_address((await rpc(self.url, "eth_accounts"))[0]))
        supply = 10**36
        self.weth = await self.deploy("TestToken", "Wrapped Ether", "WETH", 18, supply)
        self.factory = await self.deploy("DexFactory")
        self.router = await self.deploy("DexRouter")
        for i in range(n_tokens):
            dec = decimals[i] if decimals else (18 if i % 2 == 0 else 9)
            await self.add_token(f"TK{i}", dec)
        return self

    async def add_token(self, symbol: str, dec: int) -> DexToken:
        supply = 10**36
        token = await self.deploy("TestToken", f"Token {symbol}", symbol, dec, supply)
        factory = self.contract("DexFactory", self.factory)
        await self.send(self.factory, factory.encode_abi("createPair", [token, self.weth]))
        pair = await factory.functions.getPair(token, self.weth).call()
        for addr in (token, self.weth):
            erc = self.contract("TestToken", addr)
            await self.send(addr, erc.encode_abi("transfer", [pair, 10**30]))
            await self.send(addr, erc.encode_abi("approve", [self.router, 2**256 - 1]))
        await self.send(pair, self.contract("DexPair", pair).encode_abi("sync", []))
        tok = DexToken(address=token, symbol=symbol, decimals=dec, pair=str(pair))
        self.tokens.append(tok)
        return tok

    def swap_data(self, token: DexToken, *, buy: bool, amount_in: int) -> str:
        """Router calldata: a buy pays WETH for the token, a sell the mirror."""
        router = self.contract("DexRouter", self.router)
        token_in = self.weth if buy else token.address
        return str(router.encode_abi("swapExactIn", [token.pair, token_in, amount_in,
                                                     self.account]))

    async def swap(self, token: DexToken, *, buy: bool, amount_in: int, wait: bool = True
                   ) -> str:
        return await self.send(self.router, self.swap_data(token, buy=buy, amount_in=amount_in),
                               wait=wait)

    async def burn(self, token: DexToken, amount: int, *, to: str = DEAD, wait: bool = True
                   ) -> str:
        erc = self.contract("TestToken", token.address)
        data = erc.encode_abi("burn", [amount]) if to == ZERO else \
            erc.encode_abi("transfer", [to_checksum_address(to), amount])
        return await self.send(token.address, data, wait=wait)

    async def block_number(self) -> int:
        return int(await rpc(self.url, "eth_blockNumber"), 16)

    async def mine(self, blocks: int = 1) -> None:
        await rpc(self.url, "anvil_mine", [hex(blocks)])

    async def automine(self, on: bool) -> None:
        await rpc(self.url, "evm_setAutomine", [on])

    async def snapshot(self) -> str:
        return str(await rpc(self.url, "evm_snapshot"))

    async def revert(self, snap: str) -> None:
        assert await rpc(self.url, "evm_revert", [snap])
