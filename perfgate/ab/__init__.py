"""Same-job A/B: base and head built side by side, measured in balanced pairs with sequential looks; calibration."""
