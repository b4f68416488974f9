"""One typed settings tree: ``cryptowire.toml`` (or ``--config PATH``) + ``CRYPTOWIRE_*`` env.

Environment variables win over the file; nested fields use ``__``
(``CRYPTOWIRE_SERVER__PORT=9000``). Every field has a default and a one-line doc, secrets are
``SecretStr`` and print masked. Nothing here reads the environment at import time: call
:func:`load_settings`.

The package's face is this module; the models live per area (``server``, ``data``,
``sources``, ``outputs``; the root in ``tree``), the checks of :func:`load_settings` in
``check`` and the example-file renderer in ``example``.
"""

from cryptowire.settings.base import DEFAULT_CONFIG_FILE, Section
from cryptowire.settings.data import (
    HISTORY_KIND_SHARES,
    BusSettings,
    DemandSettings,
    HistorySettings,
    StoreSettings,
)
from cryptowire.settings.outputs import RfqSettings, TelegramSettings
from cryptowire.settings.server import AuthSettings, ServerSettings
from cryptowire.settings.sources import (
    ECONIA_CHANNELS,
    BinanceSettings,
    BybitSettings,
    ChainSettings,
    DemoSettings,
    EvmSettings,
    OkxSettings,
    PgNotifySettings,
    ServicesSettings,
)
from cryptowire.settings.tree import Settings, load_settings

__all__ = [
    "DEFAULT_CONFIG_FILE", "ECONIA_CHANNELS", "HISTORY_KIND_SHARES", "AuthSettings",
    "BinanceSettings", "BusSettings", "BybitSettings", "ChainSettings", "DemandSettings",
    "DemoSettings", "EvmSettings", "HistorySettings", "OkxSettings", "PgNotifySettings",
    "RfqSettings", "Section", "ServerSettings", "ServicesSettings", "Settings", "StoreSettings",
    "TelegramSettings", "load_settings",
]
