"""Independent oracles: plain computations of what fspec must produce, written without fspec's code."""
