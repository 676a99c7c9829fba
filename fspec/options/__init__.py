"""Options: Black-76 prices, implied volatilities and Greeks on the forward, and the forward implied by
put-call parity (see docs/options.md). Self-contained numba kernels; no option-chain source uses them yet."""
