"""Strategy configuration: the KTRDR strategy file loaded, validated and fully resolved
(`strategy.load_strategy`), its sections, overrides, and structured errors."""
