"""Privacy: synthesis (SDV, DP-CTGAN), quality, privacy audits and the release gate."""
