"""RFQ conversion quotes (seed 001): quote sessions, commission, liquidity providers."""
