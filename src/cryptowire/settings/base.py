"""The base of every settings section, and the config file's default name."""

from __future__ import annotations

from pydantic import BaseModel, ConfigDict

DEFAULT_CONFIG_FILE = "cryptowire.toml"


class Section(BaseModel):
    """Base of every settings section: an unknown name is an error, never ignored."""

    model_config = ConfigDict(extra="forbid")
