"""Same-job A/B: base and head built side by side, measured at the same moments or in alternate pairs, with
sequential looks; calibration."""
