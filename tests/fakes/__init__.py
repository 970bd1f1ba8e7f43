"""Stand-ins that speak real protocols on loopback (GitHub's and GitLab's REST shapes, any HTTP path), helper
processes for store faults, and synthetic runs with known truth."""
