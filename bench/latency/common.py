"""What the latency benchmark's processes share."""

#: The ticker symbols of the benchmark, in order (``--symbols N`` takes the first N).
SYMBOLS = (
    "BTCUSDT", "ETHUSDT", "SOLUSDT", "XRPUSDT", "DOGEUSDT", "ADAUSDT", "AVAXUSDT", "LINKUSDT",
    "DOTUSDT", "LTCUSDT", "BCHUSDT", "TRXUSDT", "ATOMUSDT", "NEARUSDT", "APTUSDT", "ARBUSDT",
    "OPUSDT", "SUIUSDT", "FILUSDT", "ETCUSDT", "UNIUSDT", "AAVEUSDT", "INJUSDT", "SEIUSDT",
)  # fmt: skip
