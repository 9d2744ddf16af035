"""What a run leaves behind: crash-safe files (:mod:`.atomic`), the log (:mod:`.logs`), tracking (:mod:`.tracking`)."""
